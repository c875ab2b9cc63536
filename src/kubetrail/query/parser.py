"""Recursive-descent parser of the filter language.

filter     := or_expr?
or_expr    := and_expr ("or" and_expr)*
and_expr   := unary ("and"? unary)*          terms side by side are ANDed
unary      := "not" unary | "(" or_expr ")" | comparison
comparison := FIELD OP VALUE | FIELD "not"? "in" "(" VALUE ("," VALUE)* ")"
"""

from __future__ import annotations

from kubetrail.query.errors import QueryError
from kubetrail.query.fields import lookup, suggestion
from kubetrail.query.lexer import OPERATORS, Kind, Token, tokenize
from kubetrail.query.nodes import And, Compare, Filter, Node, Not, Or, Value

_KEYWORDS = frozenset({"and", "or", "not", "in"})
MAX_NESTING = 64
"""Parentheses and `not`s deep at most: far beyond any real filter, and far below what would exhaust the stack
(of the parser, and of the SQL the filter becomes)."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind is not Kind.END:
            self.index += 1
        return token

    def error(self, message: str, token: Token, hint: str = "") -> QueryError:
        shown = token.text if token.kind is not Kind.END else ""
        return QueryError(message, column=token.column, token=shown, text=self.text, hint=hint)

    def parse(self) -> Filter:
        if self.current.kind is Kind.END:
            return Filter(self.text, None)
        root = self.or_expr()
        rest = self.tokens[self.index]
        if rest.kind is not Kind.END:
            raise self.error("unexpected token", rest, "a ')' without its '('?")
        return Filter(self.text, root)

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.current.keyword() == "or":
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.unary()]
        while True:
            token = self.current
            if token.keyword() == "and":
                self.advance()
            elif token.kind is Kind.END or token.kind is Kind.RPAREN or token.keyword() == "or":
                break
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Node:
        token = self.current
        if token.keyword() == "not" or token.kind is Kind.LPAREN:
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.error(f"nested more than {MAX_NESTING} levels deep", token, "simplify the filter")
            try:
                return self._nested(token)
            finally:
                self.depth -= 1
        return self.comparison()

    def _nested(self, token: Token) -> Node:
        self.advance()
        if token.keyword() == "not":
            return Not(self.unary())
        inner = self.or_expr()
        if self.current.kind is not Kind.RPAREN:
            raise self.error("expected ')'", self.current, f"close the '(' at column {token.column}")
        self.advance()
        return inner

    def comparison(self) -> Compare:
        token = self.advance()
        if token.kind is not Kind.WORD or token.keyword() in _KEYWORDS:
            raise self.error("expected a field name", token, "e.g. user=jane verb in (get,list) ns=prod")
        field = lookup(token.text)
        if field is None:
            raise self.error(f"unknown field {token.text!r}", token, suggestion(token.text))
        negated = False
        if self.current.keyword() == "not":
            self.advance()
            negated = True
            if self.current.keyword() != "in":
                raise self.error("expected 'in' after 'not'", self.current)
        if self.current.keyword() == "in":
            self.advance()
            return Compare(field, "in", self.value_list(), token.column, negated)
        operator = self.advance()
        if operator.kind is not Kind.OP:
            raise self.error(
                f"expected an operator after {token.text!r}", operator, f"one of {' '.join(OPERATORS)} or 'in'"
            )
        return Compare(field, operator.text, (self.value(),), token.column)

    def value(self) -> Value:
        token = self.advance()
        if token.kind is Kind.STRING:
            return Value(token.text, token.column, quoted=True)
        if token.kind is Kind.WORD:
            return Value(token.text, token.column)
        raise self.error("expected a value", token, 'quote values with spaces or symbols: name="a b"')

    def value_list(self) -> tuple[Value, ...]:
        opening = self.advance()
        if opening.kind is not Kind.LPAREN:
            raise self.error("expected '(' after 'in'", opening, "e.g. verb in (create,update)")
        values = [self.value()]
        while self.current.kind is Kind.COMMA:
            self.advance()
            values.append(self.value())
        if self.current.kind is not Kind.RPAREN:
            raise self.error("expected ',' or ')'", self.current)
        self.advance()
        return tuple(values)


def parse(text: str) -> Filter:
    """The syntax tree of a filter (no value checks; see `parse_filter`)."""
    return _Parser(text).parse()
