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
from .inputcheck import bounded_decimal, check_input, number_problem
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
    """

    def __init__(self, *, positive: bool, **kwargs: Any):
        self._positive = positive
        super().__init__(**kwargs)

    def deserialize(
        self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any
    ) -> Any:
        kind = type(value)
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
                return number
        return super().deserialize(value, attr, data, **kwargs)


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
        self._fields = tuple(self._schema.load_fields.items())
        self._names = frozenset(self._schema.load_fields)
        # Only a schema whose one hook is its own ``_make`` can be loaded field by field.
        hooks = {name: [hook[0] for hook in found] for name, found in schema._hooks.items()}
        self._quick = {k: v for k, v in hooks.items() if v} == {"post_load": ["_make"]}

    def deserialize(
        self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any
    ) -> Any:
        if self._quick and type(value) is list and not kwargs:
            try:
                return [self._item(item) for item in value]
            except ValidationError:
                pass  # the full load below reports every problem, worded by marshmallow
        return super().deserialize(value, attr, data, **kwargs)

    def _item(self, item: Any) -> Any:
        if type(item) is not dict or not self._names.issuperset(item):
            raise ValidationError("not the usual item")
        loaded = {}
        for name, field in self._fields:
            # A missing value gives the field's default, or ValidationError if required.
            loaded[name] = field.deserialize(item.get(name, missing), name, item)
        return self._schema._make(loaded)  # type: ignore[attr-defined]


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
    if isinstance(data, CancelRequest):
        data = _plain_request(data, problems)
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
