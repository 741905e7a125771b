"""marshmallow schemas: canonical JSON <-> canonical dataclasses.

``load_request`` is the single door through which input enters, JSON or a
:class:`CancelRequest` built in code alike: whatever is wrong comes back as one
:class:`InvalidRequestError` listing every field path and reason, before any
plugin sees the request. Hostile shapes (deep nesting, lone surrogates, numbers
too long to convert) are refused first by :mod:`cancelkit.core.inputcheck`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields as dataclass_fields
from decimal import Decimal
from typing import Any

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    missing,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from ..errors import FieldError, InvalidRequestError
from .currencies import ISO_4217_CODES
from .inputcheck import (
    MAX_INTEGER_DIGITS,
    bounded_decimal,
    check_input,
    number_problem,
    string_problem,
)
from .model import (
    MAX_LINES,
    OUTCOMES,
    REASONS,
    SCOPES,
    CancelRequest,
    CancelResult,
    Line,
    LineResult,
    ResultError,
    Tax,
)

_NON_NEGATIVE = validate.Range(min=0, error="must not be negative")
_POSITIVE = validate.Range(min=0, min_inclusive=False, error="must be greater than 0")
_NON_EMPTY = validate.Length(min=1, error="must not be empty")
_REASON = validate.OneOf(REASONS, error="unknown reason {input!r}; accepted: {choices}")


class _QuickDecimal(fields.Decimal):
    """A decimal field whose usual input skips marshmallow's generic steps.

    A plain ``str``, ``int`` or ``Decimal`` that converts to a finite number inside the
    bounds and above ``floor`` is returned at once, as marshmallow would have returned
    it (``Decimal(str(value))``); anything else - every value marshmallow refuses
    included - goes through the full field, which alone words the errors.

    The numbers of one shop repeat (``"15.00"``, a quantity of 1): a short ``str`` or
    an ``int`` accepted once is looked up after that, not read again. (Decimals
    are immutable, so sharing one is safe; a ``Decimal`` input is never looked up,
    since ``Decimal("1.0") == 1`` would find another exponent.)
    """

    def __init__(self, *, positive: bool, **kwargs: Any):
        self._positive = positive
        #: Accepted short str / int inputs -> their Decimal (cleared when full).
        self._known: dict[str | int, Decimal] = {}
        super().__init__(**kwargs)

    def deserialize(
        self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any
    ) -> Any:
        kind = type(value)
        if kind is str or kind is int:
            known = self._known.get(value)
            if known is not None:
                return known
        if kind is str or kind is int or kind is Decimal:
            try:
                number = Decimal(str(value))
            except ArithmeticError:  # not a number: the full field says so
                number = None
            if (
                number is not None
                and number.is_finite()
                and (number > 0 if self._positive else number >= 0)
                and number_problem(number) is None
            ):
                if kind is int or (kind is str and len(value) <= _KNOWN_LENGTH):
                    if len(self._known) >= _KNOWN_COUNT:
                        self._known.clear()
                    self._known[value] = number
                return number
        return super().deserialize(value, attr, data, **kwargs)


#: A quick decimal field remembers at most this many inputs, each at most this long.
_KNOWN_COUNT, _KNOWN_LENGTH = 1024, 40


class _QuickString(fields.String):
    """A string field whose usual input (a plain ``str`` that ``ok`` accepts) skips
    marshmallow's generic steps; anything else goes through the full field."""

    def __init__(self, *, ok: Callable[[str], bool], **kwargs: Any):
        self._ok = ok
        super().__init__(**kwargs)

    def deserialize(
        self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any
    ) -> Any:
        if type(value) is str and self._ok(value):
            return value  # what String returns for a str, and its validators pass
        return super().deserialize(value, attr, data, **kwargs)


def _money(**kwargs: Any) -> fields.Decimal:
    # allow_nan=False (the default) refuses NaN and Infinity.
    return _QuickDecimal(
        positive=False,
        validate=[_NON_NEGATIVE, bounded_decimal],
        error_messages={"invalid": "must be a number or a numeric string"},
        **kwargs,
    )


def _text(**kwargs: Any) -> fields.String:
    return _QuickString(ok=bool, validate=_NON_EMPTY, **kwargs)


def _one_of(choices: tuple[str, ...], validator: Any, **kwargs: Any) -> fields.String:
    known = frozenset(choices)
    return _QuickString(ok=known.__contains__, validate=validator, **kwargs)


class _QuickList(fields.List[Any]):
    """``List(Nested(schema))`` whose usual input skips a schema load per item.

    A ``list`` of plain dicts, each holding only keys the nested schema declares, each
    value accepted by its own field's ``deserialize`` (the quick fields above), is
    built with the schema's own ``_make``: what its load would have returned. Any
    other input - any item the schema would refuse, or that needs more than its
    fields (the nested schema must have no hook but ``_make``) - goes through the
    full ``List(Nested(schema))``, which alone words the errors.
    """

    def __init__(self, schema: type[Schema], **kwargs: Any):
        super().__init__(fields.Nested(schema), **kwargs)
        self._schema = schema()
        self._fields = _quick_fields(self._schema)
        self._names = frozenset(self._schema.load_fields)
        # Only a schema whose one hook is its own ``_make`` can be loaded field by field.
        self._quick = _hooks(schema) == {"post_load": ["_make"]} and all(
            _plain_field(field) for _, field, _, _ in self._fields
        )

    def deserialize(
        self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any
    ) -> Any:
        if self._quick and type(value) is list and not kwargs:
            try:
                return [self._item(item, False) for item in value]
            except ValidationError:
                pass  # the full load below reports every problem, worded by marshmallow
        return super().deserialize(value, attr, data, **kwargs)

    def load_guarded(self, value: list[Any]) -> list[Any]:
        """The quick load of a list the input guard has not seen: ValidationError
        (take the full path) for anything :func:`_guard_leaf` does not pass."""
        if not self._quick:
            raise _UNUSUAL
        return [self._item(item, True) for item in value]

    def _item(self, item: Any, guarded: bool) -> Any:
        if type(item) is not dict or not self._names.issuperset(item):
            raise _UNUSUAL
        return self._schema._make(_load_fields(self._fields, item, guarded))  # type: ignore[attr-defined]


#: Raised inside a quick path for input it does not take: the full load decides.
_UNUSUAL = ValidationError("not the usual input")


def _hooks(schema: type[Schema]) -> dict[str, list[str]]:
    """A schema's load and validation hooks, by kind (empty kinds left out)."""
    found = {kind: [hook[0] for hook in hooks] for kind, hooks in schema._hooks.items()}
    return {kind: names for kind, names in found.items() if names}


def _plain_field(field: fields.Field[Any]) -> bool:
    """A field the quick paths may call directly: no per-field load processors, no
    ``data_key`` or ``attribute`` renaming (the key read is the name returned)."""
    return not field.pre_load and not field.post_load and not field.data_key and not field.attribute


_QuickField = tuple[str, "fields.Field[Any]", bool, Any]


def _quick_fields(schema: Schema) -> tuple[_QuickField, ...]:
    """``(name, field, required, load_default)`` of each field ``schema`` loads."""
    return tuple(
        (name, field, field.required, field.load_default)
        for name, field in schema.load_fields.items()
    )


def _load_fields(
    quick_fields: tuple[_QuickField, ...], item: dict[str, Any], guarded: bool
) -> dict[str, Any]:
    """Each field's value loaded as marshmallow's schema load would, or ValidationError.

    ``guarded``: ``item`` has not passed :func:`~cancelkit.core.inputcheck.check_input`,
    so every value must first pass :func:`_guard_leaf`.
    """
    loaded = {}
    for name, field, required, default in quick_fields:
        value = item.get(name, missing)
        if value is missing:  # what Field.deserialize does with a missing value
            if required:
                raise _UNUSUAL
            loaded[name] = default() if callable(default) else default
        elif guarded and type(value) is list:
            if type(field) is not _QuickList:
                raise _UNUSUAL
            loaded[name] = field.load_guarded(value)
        else:
            if guarded:
                _guard_leaf(value)
            loaded[name] = field.deserialize(value, name, item)
    return loaded


def _guard_leaf(value: Any) -> None:
    """Pass only a value :func:`~cancelkit.core.inputcheck.check_input` finds nothing
    wrong with: ``None``, a ``Decimal``, an ``int`` in range, a valid Unicode ``str``.
    (Decimal values are bounded by their fields, which send the rest to the full load.)
    An empty dict passes too. Anything else raises ValidationError: the full path
    takes it."""
    kind = type(value)
    if kind is str:
        if value.isascii() or string_problem(value) is None:
            return
    elif kind is int:
        if -_INTEGER_LIMIT < value < _INTEGER_LIMIT:
            return
    elif kind is Decimal or value is None or (kind is dict and not value):
        return  # an empty dict: ``options: {}`` as a request built in code has it
    raise _UNUSUAL


_INTEGER_LIMIT = 10**MAX_INTEGER_DIGITS  # check_input's bound on integers


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class TaxSchema(_Strict):
    code = _text(required=True)
    amount = _money(required=True)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> Tax:
        return Tax(**data)


class LineSchema(_Strict):
    line_id = _text(required=True)
    quantity = _QuickDecimal(
        positive=True,
        required=True,
        validate=[_POSITIVE, bounded_decimal],
        error_messages={"invalid": "must be a number"},
    )
    product_id = _text(load_default=None)
    price = _money(load_default=None)
    shipping_price = _money(load_default=None)
    taxes = _QuickList(TaxSchema, load_default=())
    shipping_taxes = _QuickList(TaxSchema, load_default=())
    reason = _one_of(REASONS, _REASON, load_default=None)
    platform_reason = _text(load_default=None)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> Line:
        data["taxes"] = tuple(data["taxes"])
        data["shipping_taxes"] = tuple(data["shipping_taxes"])
        return Line(**data)


def _check_currency(code: str) -> None:
    if code not in ISO_4217_CODES:
        raise ValidationError(f"{code!r} is not an ISO 4217 currency code") from None


class CancelRequestSchema(_Strict):
    order_id = _text(load_default=None)
    fulfillment_order_id = _text(load_default=None)
    reason = _one_of(REASONS, _REASON, load_default=None)
    platform_reason = _text(load_default=None)
    currency = _one_of(tuple(ISO_4217_CODES), _check_currency, load_default=None)
    #: "lines" (the default): cancel the listed lines. "all_pending": cancel every
    #: pending line of the (fulfillment) order, where the platform can; lines empty.
    scope = _one_of(SCOPES, validate.OneOf(SCOPES), load_default="lines")
    lines = _QuickList(LineSchema, load_default=())
    options = fields.Dict(keys=fields.String(), load_default=dict)
    idempotency_key = _text(load_default=None)

    @pre_load
    def _bound_size(self, data: Any, **_: Any) -> Any:
        # Checked before the lines are loaded so a huge request costs nothing.
        lines = data.get("lines") if isinstance(data, Mapping) else None
        if isinstance(lines, list) and len(lines) > MAX_LINES:
            raise ValidationError(
                f"at most {MAX_LINES} lines per request, got {len(lines)}", "lines"
            )
        return data

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _lines_match_scope(self, data: dict[str, Any], original: Any, **_: Any) -> None:
        if not isinstance(original, Mapping):
            return
        given = original.get("lines")
        if original.get("scope") == "all_pending":
            if given:
                raise ValidationError("must be empty when scope is all_pending", "lines")
        elif "lines" not in original:
            raise ValidationError("required", "lines")
        elif isinstance(given, list) and not given:
            raise ValidationError("must contain at least one line", "lines")

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _unique_lines(self, data: dict[str, Any], original: Any, **_: Any) -> None:
        # Read from the input, so duplicates are reported along with other field errors.
        given = original.get("lines") if isinstance(original, Mapping) else None
        seen: dict[str, int] = {}
        problems: dict[int, dict[str, list[str]]] = {}
        for index, line in enumerate(given if isinstance(given, list) else ()):
            line_id = line.get("line_id") if isinstance(line, Mapping) else None
            if not isinstance(line_id, str):
                continue
            if line_id in seen:
                problems[index] = {"line_id": [f"duplicate of lines[{seen[line_id]}].line_id"]}
            seen.setdefault(line_id, index)
        if problems:
            raise ValidationError({"lines": problems})

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> CancelRequest:
        data["lines"] = tuple(data["lines"])
        return CancelRequest(**data)


def flatten_messages(messages: Any, prefix: str = "") -> list[FieldError]:
    """Turn marshmallow's nested error dict into ``lines[1].quantity: reason`` items."""
    if isinstance(messages, str):
        return [FieldError(prefix, _lower_first(messages))]
    if isinstance(messages, list):
        found: list[FieldError] = []
        for item in messages:
            found.extend(flatten_messages(item, prefix))
        return found
    found = []
    for key, value in messages.items():
        if key == "_schema":
            path = prefix
        elif isinstance(key, int):
            path = f"{prefix}[{key}]"
        else:
            path = f"{prefix}.{key}" if prefix else str(key)
        found.extend(flatten_messages(value, path))
    return found


def _lower_first(message: str) -> str:
    message = message.rstrip(".")
    if message == "Unknown field":
        return "unknown field"
    if message == "Missing data for required field":
        return "required"
    return message[:1].lower() + message[1:]


def load_request(data: Any) -> CancelRequest:
    """Build a checked :class:`CancelRequest`, or raise ``InvalidRequestError``.

    ``data`` is parsed JSON or a ``CancelRequest`` built in code; the latter is
    taken apart into its raw values and loaded through the same schema, so it
    passes exactly the same checks. Every problem is reported at once, each with
    its field path.
    """
    problems: list[FieldError] = []
    if type(data) is dict:
        quick = _quick_request(data)
        if quick is not None:
            return quick
    elif isinstance(data, CancelRequest):
        data = _plain_request(data, problems)
        if not problems:
            quick = _quick_request(data)
            if quick is not None:
                return quick
    elif not isinstance(data, Mapping):
        raise InvalidRequestError(
            FieldError("", f"the request must be a JSON object, not {_json_type(data)}")
        )
    problems.extend(check_input(data))
    if problems:  # hostile or mistyped input never reaches marshmallow
        raise InvalidRequestError(problems)
    try:
        loaded: CancelRequest = _REQUEST_SCHEMA.load(data)
    except ValidationError as error:
        raise InvalidRequestError(flatten_messages(error.messages)) from None
    return loaded


def _quick_request(data: dict[str, Any]) -> CancelRequest | None:
    """The usual request loaded without marshmallow's schema machinery, or None.

    The usual request: a plain dict of known keys, lines (at most ``MAX_LINES``, with
    distinct ``line_id`` values) and no ``options`` but ``{}``, whose every value
    passes :func:`_guard_leaf` (so :func:`check_input` would find nothing) and its
    field's quick load. It is built with the schema's own ``_make``, as its load
    would build it. Anything else - whatever the schema's validators or the input
    guard would refuse, ``scope: all_pending`` - returns None: the full load, which
    alone words the errors.
    """
    if not _REQUEST_QUICK or not _REQUEST_NAMES.issuperset(data):
        return None
    lines = data.get("lines")
    if type(lines) is not list or not lines or len(lines) > MAX_LINES:
        return None  # what _bound_size and _lines_match_scope refuse, or not the usual
    if data.get("scope", "lines") != "lines":
        return None  # all_pending (lines must then be empty), or a scope to refuse
    try:
        loaded = _load_fields(_REQUEST_FIELDS, data, True)
    except ValidationError:
        return None
    if len({line.line_id for line in loaded["lines"]}) != len(lines):
        return None  # a duplicate line_id: _unique_lines words it
    request: CancelRequest = _REQUEST_SCHEMA._make(loaded)
    return request


def _plain_request(request: CancelRequest, problems: list[FieldError]) -> dict[str, Any]:
    """A request built in code as the plain data its JSON form would be (raw values).

    Nothing is converted or trusted: the schema judges every value. Only the
    element types of ``lines`` and taxes are checked here, since a mapping in
    place of a ``Line`` would otherwise load as if it were JSON.
    """
    data = _attributes(request)
    data["lines"] = _elements(request.lines, Line, "lines", problems, _plain_line)
    return data


def _plain_line(line: Line, path: str, problems: list[FieldError]) -> dict[str, Any]:
    data = _attributes(line)
    for name in ("taxes", "shipping_taxes"):
        data[name] = _elements(data[name], Tax, f"{path}.{name}", problems, _plain_tax)
    return data


def _plain_tax(tax: Tax, path: str, problems: list[FieldError]) -> dict[str, Any]:
    return _attributes(tax)


def _attributes(instance: Any) -> dict[str, Any]:
    return {f.name: getattr(instance, f.name) for f in dataclass_fields(instance)}


def _elements(
    value: Any,
    kind: type,
    path: str,
    problems: list[FieldError],
    plain: Callable[[Any, str, list[FieldError]], dict[str, Any]],
) -> Any:
    """``value`` as a list of plain items; anything but a list or tuple is left to the schema."""
    if not isinstance(value, (list, tuple)):
        return value
    found: list[Any] = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if isinstance(item, kind):
            found.append(plain(item, where, problems))
        else:
            problems.append(
                FieldError(where, f"must be a {kind.__name__}, not {type(item).__name__}")
            )
            found.append(None)
    return found


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    return type(value).__name__


def dump_request(request: CancelRequest) -> dict[str, Any]:
    """The canonical JSON form of a request (``Decimal`` values kept exact)."""
    dumped: dict[str, Any] = _REQUEST_SCHEMA.dump(request)
    return dumped


class _ResultErrorSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    code = fields.String(allow_none=True)
    message = fields.String()
    field = fields.String(allow_none=True)
    retryable = fields.Boolean()


class _LineResultSchema(Schema):
    line_id = fields.String()
    quantity = fields.Decimal()
    status = fields.String()
    errors = fields.List(fields.Nested(_ResultErrorSchema))


class CancelResultSchema(Schema):
    platform = fields.String()
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    tracking_id = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(_LineResultSchema))
    errors = fields.List(fields.Nested(_ResultErrorSchema))
    warnings = fields.List(fields.String())
    http_status = fields.Integer(allow_none=True)
    retry_after = fields.Float(allow_none=True)
    message = fields.String(allow_none=True)
    details = fields.Dict()

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> CancelResult:
        data["lines"] = tuple(
            LineResult(
                **{**line, "errors": tuple(ResultError(**e) for e in line.get("errors", ()))}
            )
            for line in data.get("lines", ())
        )
        data["errors"] = tuple(ResultError(**e) for e in data.get("errors", ()))
        data["warnings"] = tuple(data.get("warnings", ()))
        return CancelResult(**data)


def dump_result(result: CancelResult) -> dict[str, Any]:
    """The canonical JSON form of a result (contract)."""
    dumped: dict[str, Any] = _RESULT_SCHEMA.dump(result)
    return dumped


# Built once: constructing a marshmallow schema costs more than loading a request.
_REQUEST_SCHEMA = CancelRequestSchema()
_RESULT_SCHEMA = CancelResultSchema()
_REQUEST_FIELDS = _quick_fields(_REQUEST_SCHEMA)
_REQUEST_NAMES = frozenset(_REQUEST_SCHEMA.load_fields)
#: The quick path knows these hooks (it does their checks itself); another hook
#: added to the schema turns it off until it knows that one too.
_REQUEST_QUICK = _hooks(CancelRequestSchema) == {
    "pre_load": ["_bound_size"],
    "validates_schema": ["_lines_match_scope", "_unique_lines"],
    "post_load": ["_make"],
} and all(_plain_field(field) for _, field, _, _ in _REQUEST_FIELDS)
