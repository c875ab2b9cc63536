"""`python -m kubetrail`: the `kubetrail` command."""

from kubetrail.cli.main import main

if __name__ == "__main__":
    main()
