"""Parse Falco's condition language into a syntax tree, following libsinsp's grammar and precedence.

expr    := and ("or" and)*          and := not ("and" not)*
not     := ("not" blank | "not(")* check
check   := "(" expr ")" | field [arg] op value | identifier (a macro)
"""

from __future__ import annotations

from kubetrail.detect.lexer import (
    BARE_STRING,
    FIELD_ARG_BARE,
    FIELD_NAME,
    HEX_NUMBER,
    IDENTIFIER,
    NOT_BLANK,
    NUMBER,
    ScanError,
    Scanner,
)
from kubetrail.detect.nodes import (
    LIST_OPERATORS,
    NUMERIC_OPERATORS,
    UNARY_OPERATORS,
    And,
    Check,
    Expr,
    FieldRef,
    Item,
    MacroRef,
    Not,
    Or,
    Pos,
    ValueList,
)

MAX_DEPTH = 1000
# String operators that are words need a blank after them, as in libsinsp.
_STRING_OPERATOR_TOKENS = (
    "==",
    "=",
    "!=",
    "glob ",
    "iglob ",
    "contains ",
    "icontains ",
    "bcontains ",
    "startswith ",
    "bstartswith ",
    "endswith ",
    "regex ",
)
_OPERATOR_NAMES = "'exists', '<=', '<', '>=', '>', '=', '==', '!=', 'glob', 'iglob', 'contains', 'icontains', "
_OPERATOR_NAMES += "'bcontains', 'startswith', 'bstartswith', 'endswith', 'regex', 'intersects', 'in', 'pmatch'"


class ParseError(ValueError):
    """A syntax error at a position of the condition, saying what was expected there."""

    def __init__(self, message: str, pos: Pos) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


class _Parser:
    def __init__(self, text: str) -> None:
        self.scan = Scanner(text)
        self.depth = 0

    def fail(self, message: str) -> ParseError:
        return ParseError(message, self.scan.pos)

    def enter(self) -> None:
        self.depth += 1
        if self.depth >= MAX_DEPTH:
            raise self.fail(f"exceeded max depth limit of {MAX_DEPTH}")

    def parse(self) -> Expr:
        if not self.scan.text.strip():
            raise self.fail("condition is empty")
        expr = self.parse_or()
        if not self.scan.at_end:
            raise self.fail(f"unexpected token after '{self.scan.last}', expecting 'or', 'and'")
        return expr

    def parse_or(self) -> Expr:
        self.enter()
        scan = self.scan
        scan.blank()
        pos = scan.pos
        children = [self.parse_and()]
        scan.blank()
        while scan.take("or"):
            children.append(self._operand_after("or", self.parse_and))
            scan.blank()
        self.depth -= 1
        return children[0] if len(children) == 1 else Or(tuple(children), pos)

    def parse_and(self) -> Expr:
        self.enter()
        scan = self.scan
        scan.blank()
        pos = scan.pos
        children = [self.parse_not()]
        scan.blank()
        while scan.take("and"):
            children.append(self._operand_after("and", self.parse_not))
            scan.blank()
        self.depth -= 1
        return children[0] if len(children) == 1 else And(tuple(children), pos)

    def _operand_after(self, keyword: str, parse_next: object) -> Expr:
        if self.scan.blank():
            return parse_next()  # type: ignore[operator, no-any-return]
        if self.scan.take("("):
            return self.parse_embedded()
        raise self.fail(f"expected blank or '(' after '{keyword}'")

    def parse_not(self) -> Expr:
        self.enter()
        scan = self.scan
        scan.blank()
        pos = scan.pos
        negate = False
        while scan.take_regex(NOT_BLANK):
            negate = not negate
        if scan.take("not("):
            negate = not negate
            child = self.parse_embedded()
        else:
            child = self.parse_check()
        self.depth -= 1
        return Not(child, pos) if negate else child

    def parse_embedded(self) -> Expr:
        """The rest of a parenthesised expression, after its `(`."""
        self.enter()
        self.scan.blank()
        child = self.parse_or()
        self.scan.blank()
        if not self.scan.take(")"):
            raise self.fail("expected a ')' token")
        self.depth -= 1
        return child

    def parse_check(self) -> Expr:
        scan = self.scan
        scan.blank()
        pos = scan.pos
        if scan.take("("):
            return self.parse_embedded()
        name = scan.take_regex(FIELD_NAME)
        if name is not None:
            field = self.parse_field_arg(name, pos)
            return self.parse_condition(field, pos)
        identifier = scan.take_regex(IDENTIFIER)
        if identifier is not None:
            return MacroRef(identifier, pos)
        raise self.fail("expected a '(' token, a field check, or an identifier")

    def parse_field_arg(self, name: str, pos: Pos) -> FieldRef:
        scan = self.scan
        if not scan.take("["):
            return FieldRef(name, None, pos)
        arg = self.quoted() or scan.take_regex(FIELD_ARG_BARE)
        if arg is None:
            raise self.fail("expected a valid field argument: a quoted string or a bare string")
        if not scan.take("]"):
            raise self.fail("expected a ']' token")
        return FieldRef(name, arg, pos)

    def quoted(self) -> str | None:
        try:
            return self.scan.take_quoted()
        except ScanError as error:
            raise ParseError(error.message, error.pos) from None

    def parse_condition(self, field: FieldRef, pos: Pos) -> Check:
        scan = self.scan
        scan.blank()
        unary = scan.take_any(UNARY_OPERATORS)
        if unary is not None:
            return Check(field, unary, None, pos)
        scan.blank()
        operator = scan.take_any(NUMERIC_OPERATORS)
        if operator is not None:
            return Check(field, operator, self.parse_number(), pos)
        operator = scan.take_any(_STRING_OPERATOR_TOKENS)
        if operator is not None:
            return Check(field, operator.strip(), self.parse_string(), pos)
        operator = scan.take_any(LIST_OPERATORS)
        if operator is not None:
            return Check(field, operator, self.parse_list(), pos)
        raise self.fail(f"expected a valid check operator: one of {_OPERATOR_NAMES}")

    def parse_number(self) -> Item:
        scan = self.scan
        scan.blank()
        pos = scan.pos
        text = scan.take_regex(HEX_NUMBER) or scan.take_regex(NUMBER)
        if text is None:
            raise self.fail("expected a number value")
        return Item(text, True, pos)

    def parse_string(self) -> Item:
        scan = self.scan
        scan.blank()
        pos = scan.pos
        quoted = self.quoted()
        if quoted is not None:
            return Item(quoted, False, pos)
        bare = scan.take_regex(BARE_STRING)
        if bare is None:
            raise self.fail("expected a string value")
        return Item(bare, True, pos)

    def parse_list(self) -> ValueList:
        scan = self.scan
        scan.blank()
        pos = scan.pos
        if scan.take("("):
            items: list[Item] = []
            scan.blank()
            if not scan.peek(")"):
                items.append(self.parse_string())
                scan.blank()
                while scan.take(","):
                    items.append(self.parse_string())
                    scan.blank()
            if not scan.take(")"):
                raise self.fail("expected a ')' token")
            return ValueList(tuple(items), pos)
        name = scan.take_regex(IDENTIFIER)
        if name is not None:
            return ValueList((Item(name, True, pos),), pos, parenthesised=False)
        raise self.fail("expected a list or an identifier")


def parse_condition(text: str) -> Expr:
    """Parse a condition; raises ParseError with the failing position and what was expected."""
    return _Parser(text).parse()
