"""The sandbox kit, piece by piece: Refusal, StatefulEmulator/StateField, TokenIssuer,
and the contract check - each used directly, then through a running sandbox."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests

import cancelkit.plugin as plugin
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.errors import ConfigurationError
from cancelkit.plugin import (
    Contract,
    EmuRequest,
    EmuResponse,
    Refusal,
    StateError,
    StateField,
    StatefulEmulator,
    TokenIssuer,
    Violation,
)

ID, SECRET = "toy-client-id", "toy-client-secret"
LIFETIME = 900
NOW = 1_767_225_600.0
CREDENTIALS = {"grant_type": "client_credentials", "client_id": ID, "client_secret": SECRET}
SEED = {"O-1": {"lines": {"L-1": {"quantity": 2}}}}


def unauthorized(why: str) -> Refusal:
    return Refusal(401, {"code": "UNAUTHORIZED", "why": why}, {"WWW-Authenticate": "Bearer"})


class Toy(StatefulEmulator):
    """A small emulator built from the kit only."""

    platform = "toy"
    production_bases: ClassVar[dict[str, str]] = {"api": "https://api.toy.example"}
    orders = StateField(SEED)
    counter = StateField(0)
    origin: StateField[float | None] = StateField(None)
    labels: StateField[list[str]] = StateField(factory=list, required=False)
    _scratch: StateField[list[float]] = StateField(factory=list, kept=False)
    tokens = TokenIssuer(
        client_id=ID,
        client_secret=SECRET,
        lifetime=LIFETIME,
        credentials=("form", "basic"),
        unauthorized=unauthorized,
    )

    def rebuild(self) -> None:
        self.rebuilt = getattr(self, "rebuilt", 0) + 1

    def client_settings(self, base_url: str) -> dict[str, str]:
        return {"base_url": base_url}

    def is_token_request(self, request: EmuRequest) -> bool:
        return request.segments == ("token",)

    def handle(self, request: EmuRequest) -> EmuResponse:
        if self.is_token_request(request):
            return self.tokens.issue(request)
        self.tokens.check(request)
        self.counter += 1  # changed before a refusal: must still be saved
        if request.segments == ("busy",):
            raise Refusal(429, {"code": "SLOW_DOWN"}, {"Retry-After": "7"})
        return EmuResponse.json(200, {"counter": self.counter})


class Other(Toy):
    platform = "other"


def req(
    *segments: str,
    now: float = NOW,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> EmuRequest:
    return EmuRequest("POST", segments, {}, headers or {}, body, now=now)


def form(**fields: str) -> bytes:
    return "&".join(f"{k}={v}" for k, v in fields.items()).encode()


def basic(client_id: str, secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def token_of(emulator: Toy, now: float = NOW) -> str:
    answer = emulator.handle(
        req(
            "token",
            now=now,
            body=form(grant_type="client_credentials", client_id=ID, client_secret=SECRET),
        )
    )
    return str(json.loads(answer.body)["access_token"])


def refused(call: Any) -> Refusal:
    with pytest.raises(Refusal) as caught:
        call()
    return caught.value


# -- Refusal -----------------------------------------------------------------------
def test_a_refusal_answers_its_status_json_and_headers() -> None:
    refusal = Refusal(429, {"code": "SLOW_DOWN"}, {"Retry-After": "7"})
    answer = refusal.response
    assert answer.status == 429
    assert json.loads(answer.body) == {"code": "SLOW_DOWN"}
    assert answer.headers == {"Content-Type": "application/json", "Retry-After": "7"}


def test_with_headers_adds_to_a_copy_and_keeps_the_original() -> None:
    refusal = Refusal(400, ["bad"], {"Retry-After": "1"})
    more = refusal.with_headers({"X-Limit": "5"})
    assert more.response.headers == {
        "Content-Type": "application/json",
        "Retry-After": "1",
        "X-Limit": "5",
    }
    assert more.payload == ["bad"] and more.status == 400
    assert "X-Limit" not in refusal.response.headers


def test_a_refusal_can_answer_a_body_that_is_not_json() -> None:
    page = EmuResponse(502, b"<html>down</html>", {"Content-Type": "text/html"})
    refusal = Refusal.of(page)
    assert refusal.response == page
    assert refusal.with_headers({"X-A": "1"}).response.body == b"<html>down</html>"


def test_a_declared_refusal_is_raised_as_a_fresh_exception_each_time() -> None:
    emulator = Toy()
    first = refused(lambda: emulator.tokens.check(req("api")))
    second = refused(lambda: emulator.tokens.check(req("api")))
    assert first is not second
    assert first.response == second.response


# -- state ----------------------------------------------------------------------------
def test_reset_gives_a_deep_copy_of_the_seed() -> None:
    emulator = Toy()
    emulator.orders["O-1"]["lines"]["L-1"]["quantity"] = 0
    emulator.orders["O-2"] = {}
    emulator.counter = 5
    emulator.reset()
    assert emulator.orders == {"O-1": {"lines": {"L-1": {"quantity": 2}}}}
    assert SEED["O-1"]["lines"]["L-1"]["quantity"] == 2  # the seed itself never changes
    assert emulator.counter == 0
    assert Toy().orders is not Toy().orders


def test_dump_holds_every_kept_field_in_order_and_is_json() -> None:
    emulator = Toy()
    token = token_of(emulator)
    emulator._scratch.append(1.0)
    dumped = emulator.dump_state()
    assert list(dumped) == ["orders", "counter", "origin", "labels", "tokens"]
    assert json.loads(json.dumps(dumped)) == {
        "orders": SEED,
        "counter": 0,
        "origin": None,
        "labels": [],
        "tokens": {token: NOW + LIFETIME},
    }


def test_load_restores_a_dump_into_another_emulator() -> None:
    first = Toy()
    token = token_of(first)
    first.orders["O-1"]["lines"]["L-1"]["quantity"] = 1
    first.counter, first.origin, first.labels = 3, 12.5, ["x"]
    second = Toy()
    second.load_state(json.loads(json.dumps(first.dump_state())))
    assert second.dump_state() == first.dump_state()
    assert second.tokens.check(req("api", headers={"Authorization": f"Bearer {token}"})) == token
    second.orders["O-1"]["lines"]["L-1"]["quantity"] = 0  # a copy: the first is untouched
    assert first.orders["O-1"]["lines"]["L-1"]["quantity"] == 1


def test_scratch_fields_are_reset_but_never_dumped_or_loaded() -> None:
    emulator = Toy()
    emulator._scratch.append(1.0)
    emulator.load_state(Toy().dump_state())
    assert emulator._scratch == [1.0]  # a load keeps it
    emulator.reset()
    assert emulator._scratch == []


def test_rebuild_runs_after_reset_and_after_load() -> None:
    emulator = Toy()
    assert emulator.rebuilt == 1
    emulator.load_state(emulator.dump_state())
    emulator.reset()
    assert emulator.rebuilt == 3


def test_a_field_added_later_is_seeded_when_an_older_state_lacks_it() -> None:
    older = Toy().dump_state()
    del older["labels"]
    emulator = Toy()
    emulator.labels = ["stale"]
    emulator.load_state(older)
    assert emulator.labels == []


def test_an_int_saved_for_a_float_field_loads_as_a_float() -> None:
    class Clocked(Toy):
        started = StateField(0.0)

    emulator = Clocked()
    emulator.load_state({**emulator.dump_state(), "started": 3})
    assert emulator.started == 3.0 and isinstance(emulator.started, float)


#: A good state (counter 9, every other field valid) -> garbage made of it.
GARBAGE = [
    pytest.param(lambda good: [1, 2], "must be an object", id="not-an-object"),
    pytest.param(lambda good: {"counter": 9}, "has no 'orders'", id="missing-field"),
    pytest.param(
        lambda good: {**good, "orders": []}, "'orders': expected a dict, got list", id="wrong-type"
    ),
    pytest.param(
        lambda good: {**good, "counter": True},
        "'counter': expected a int, got bool",
        id="bool-for-int",
    ),
    pytest.param(lambda good: {**good, "counter": "3"}, "'counter'", id="string-for-int"),
    pytest.param(lambda good: {**good, "tokens": 7}, "'tokens'", id="tokens-not-an-object"),
    pytest.param(
        lambda good: {**good, "tokens": {"t": "soon"}}, "'tokens'", id="expiry-not-a-number"
    ),
    pytest.param(lambda good: {**good, "tokens": [1]}, "'tokens'", id="token-not-a-string"),
]


@pytest.mark.parametrize(("garbage", "message"), GARBAGE)
def test_a_garbage_state_is_refused_and_changes_nothing(garbage: Any, message: str) -> None:
    emulator = Toy()
    token_of(emulator)
    emulator.counter = 4
    before = json.dumps(emulator.dump_state())
    good = {**Toy().dump_state(), "counter": 9}
    with pytest.raises(StateError, match=message):
        emulator.load_state(garbage(good))
    assert json.dumps(emulator.dump_state()) == before  # not half loaded


def test_a_state_file_with_garbage_is_a_configuration_error_naming_the_way_out(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"toy": {**Toy().dump_state(), "orders": "gone"}}))
    with pytest.raises(ConfigurationError, match=r"cannot load.*'orders'.*--reset"):
        Sandbox([Toy()], state_path=path).start()


def test_a_field_takes_a_seed_or_a_factory() -> None:
    with pytest.raises(TypeError):
        StateField()
    with pytest.raises(TypeError):
        StateField(1, factory=int)


def test_a_field_read_before_the_emulator_was_seeded_says_so() -> None:
    emulator = Toy.__new__(Toy)
    with pytest.raises(AttributeError, match="not set yet"):
        _ = emulator.orders


# -- tokens ---------------------------------------------------------------------------
def test_tokens_are_numbered_not_random_and_answered_as_oauth() -> None:
    emulator = Toy()
    answer = emulator.handle(
        req("token", body=form(grant_type="client_credentials", client_id=ID, client_secret=SECRET))
    )
    assert answer.status == 200
    assert json.loads(answer.body) == {
        "access_token": "sbx-toy-token-1",
        "token_type": "Bearer",
        "expires_in": LIFETIME,
    }
    assert token_of(emulator) == "sbx-toy-token-2"
    assert token_of(Toy()) == "sbx-toy-token-1"  # a new emulator: the same sequence
    assert list(emulator.tokens) == ["sbx-toy-token-1", "sbx-toy-token-2"]


def test_basic_credentials_as_walmart_sends_them() -> None:
    emulator = Toy()
    answer = emulator.tokens.issue(
        req("token", headers=basic(ID, SECRET), body=form(grant_type="client_credentials"))
    )
    assert list(json.loads(answer.body)) == ["access_token", "token_type", "expires_in"]


def test_json_credentials() -> None:
    class JsonToy(Toy):
        tokens = TokenIssuer(
            client_id=ID, client_secret=SECRET, lifetime=60, credentials=("json",), grant_type=None
        )

    emulator = JsonToy()
    body = json.dumps({"client_id": ID, "client_secret": SECRET}).encode()
    assert emulator.tokens.issue(req("token", body=body)).status == 200
    # A form is not JSON: no credentials were given.
    refusal = refused(
        lambda: emulator.tokens.issue(req("token", body=form(client_id=ID, client_secret=SECRET)))
    )
    assert refusal.payload == {"error": "invalid_client"}


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param(
            {},
            form(grant_type="client_credentials", client_id=ID, client_secret="wrong"),
            id="wrong-secret",
        ),
        pytest.param(
            {},
            form(grant_type="client_credentials", client_id="someone", client_secret=SECRET),
            id="wrong-id",
        ),
        pytest.param(
            {},
            form(grant_type="client_credentials", client_id=ID, client_secret=SECRET[:-1]),
            id="secret-prefix",
        ),
        pytest.param(basic(ID, "wrong"), form(grant_type="client_credentials"), id="basic-wrong"),
        pytest.param(
            {"Authorization": "Basic !!!"},
            form(grant_type="client_credentials"),
            id="basic-not-base64",
        ),
        pytest.param(
            {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
            form(grant_type="client_credentials"),
            id="basic-no-colon",
        ),
    ],
)
def test_wrong_client_credentials_get_no_token(headers: dict[str, str], body: bytes) -> None:
    emulator = Toy()
    refusal = refused(lambda: emulator.tokens.issue(req("token", headers=headers, body=body)))
    assert (refusal.status, refusal.payload) == (401, {"error": "invalid_client"})
    assert len(emulator.tokens) == 0


def test_the_platforms_own_token_refusals_are_used() -> None:
    class Picky(Toy):
        tokens = TokenIssuer(
            client_id=ID,
            client_secret=SECRET,
            lifetime=60,
            missing_client=Refusal(400, {"error": "bad_request"}),
            invalid_client=Refusal(403, {"error": "access_denied"}),
            unsupported_grant=Refusal(400, {"error": "grant", "detail": "no"}),
        )

    emulator = Picky()
    missing = refused(
        lambda: emulator.tokens.issue(
            req("token", body=form(grant_type="client_credentials", client_id=ID))
        )
    )
    assert (missing.status, missing.payload) == (400, {"error": "bad_request"})
    wrong = refused(
        lambda: emulator.tokens.issue(
            req(
                "token", body=form(grant_type="client_credentials", client_id=ID, client_secret="x")
            )
        )
    )
    assert (wrong.status, wrong.payload) == (403, {"error": "access_denied"})
    grant = refused(
        lambda: emulator.tokens.issue(
            req("token", body=form(grant_type="password", client_id=ID, client_secret=SECRET))
        )
    )
    assert (grant.status, grant.payload) == (400, {"error": "grant", "detail": "no"})


def test_basic_credentials_are_ignored_where_the_platform_takes_none() -> None:
    class FormOnly(Toy):
        tokens = TokenIssuer(client_id=ID, client_secret=SECRET, lifetime=60)

    emulator = FormOnly()
    call = req("token", headers=basic(ID, SECRET), body=form(grant_type="client_credentials"))
    assert refused(lambda: emulator.tokens.issue(call)).status == 401


def test_a_serial_numbers_tokens_and_is_not_called_for_a_refused_request() -> None:
    emulator = Toy()
    numbers = iter([41, 42])
    wrong = req(
        "token", body=form(grant_type="client_credentials", client_id=ID, client_secret="x")
    )
    refused(lambda: emulator.tokens.issue(wrong, serial=lambda: next(numbers)))
    right = req("token", headers=basic(ID, SECRET), body=form(grant_type="client_credentials"))
    answer = emulator.tokens.issue(right, serial=lambda: next(numbers))
    assert json.loads(answer.body)["access_token"] == "sbx-toy-token-41"


def test_a_token_expires_on_the_sandbox_clock() -> None:
    emulator = Toy()
    token = token_of(emulator, now=NOW)
    bearer = {"Authorization": f"Bearer {token}"}
    assert emulator.tokens.check(req("api", now=NOW + LIFETIME - 0.001, headers=bearer)) == token
    refusal = refused(lambda: emulator.tokens.check(req("api", now=NOW + LIFETIME, headers=bearer)))
    assert refusal.payload == {"code": "UNAUTHORIZED", "why": "expired"}
    assert refusal.response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("header", "why"),
    [
        pytest.param(None, "missing", id="missing"),
        pytest.param("", "missing", id="empty"),
        pytest.param("Bearer", "malformed", id="no-token"),
        pytest.param("Bearer ", "malformed", id="blank-token"),
        pytest.param("Bearer  sbx-toy-token-1", "malformed", id="two-spaces"),
        pytest.param("Basic sbx-toy-token-1", "malformed", id="other-scheme"),
        pytest.param("sbx-toy-token-1", "malformed", id="no-scheme"),
        pytest.param("Bearer sbx-toy-token-9", "unknown", id="never-issued"),
        pytest.param("Bearer sbx-toy-token-1 extra", "malformed", id="trailing-words"),
    ],
)
def test_calls_without_a_live_bearer_are_refused_with_the_reason(
    header: str | None, why: str
) -> None:
    emulator = Toy()
    token_of(emulator)
    headers = {} if header is None else {"Authorization": header}
    refusal = refused(lambda: emulator.tokens.check(req("api", headers=headers)))
    assert refusal.payload == {"code": "UNAUTHORIZED", "why": why}


def test_the_scheme_is_case_insensitive() -> None:
    emulator = Toy()
    token = token_of(emulator)
    assert emulator.tokens.check(req("api", headers={"authorization": f"bearer {token}"})) == token


def test_a_token_of_another_emulator_is_refused() -> None:
    mine, theirs = Toy(), Other()
    token_of(mine)
    stolen = token_of(theirs)
    assert stolen == "sbx-other-token-1"
    refusal = refused(
        lambda: mine.tokens.check(req("api", headers={"Authorization": f"Bearer {stolen}"}))
    )
    assert refusal.payload["why"] == "unknown"


def test_a_raw_token_header_as_walmart_takes_it() -> None:
    class Raw(Toy):
        tokens = TokenIssuer(
            client_id=ID,
            client_secret=SECRET,
            lifetime=900,
            credentials=("basic",),
            header="WM_SEC.ACCESS_TOKEN",
            scheme=None,
        )

    emulator = Raw()
    answer = emulator.tokens.issue(
        req("token", headers=basic(ID, SECRET), body=form(grant_type="client_credentials"))
    )
    token = json.loads(answer.body)["access_token"]
    assert emulator.tokens.check(req("api", headers={"WM_SEC.ACCESS_TOKEN": token})) == token
    for header in (
        {"WM_SEC.ACCESS_TOKEN": f"Bearer {token}"},
        {"Authorization": f"Bearer {token}"},
    ):
        refusal = refused(lambda h=header: emulator.tokens.check(req("api", headers=h)))
        assert refusal.status == 401  # the RFC 6750 default refusal
        assert refusal.payload == {"error": "invalid_token"}


def test_tokens_without_a_lifetime_never_expire_and_a_legacy_list_loads() -> None:
    emulator = Toy()
    state = {**emulator.dump_state(), "tokens": ["sbx-toy-token-1"]}  # an older state file
    emulator.load_state(state)
    bearer = {"Authorization": "Bearer sbx-toy-token-1"}
    assert emulator.tokens.check(req("api", now=NOW * 2, headers=bearer)) == "sbx-toy-token-1"
    assert emulator.tokens.expires_at("sbx-toy-token-1") is None
    assert token_of(emulator) == "sbx-toy-token-2"  # numbering goes on after the loaded ones


def test_neither_issuer_nor_store_shows_a_secret_or_a_token() -> None:
    emulator = Toy()
    token = token_of(emulator)
    shown = repr(Toy.tokens) + repr(emulator.tokens) + str(Refusal(401, {}))
    assert SECRET not in shown and ID not in shown and token not in shown


def test_credential_sources_are_checked() -> None:
    with pytest.raises(ValueError, match="credentials come from"):
        TokenIssuer(client_id=ID, client_secret=SECRET, lifetime=1, credentials=("cookie",))


# -- contract -------------------------------------------------------------------------
CONTRACT = Contract(
    {
        "type": "object",
        "required": ["lines"],
        "properties": {
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "quantity"],
                    "properties": {"id": {"type": "string"}, "quantity": {"type": "integer"}},
                },
            }
        },
    },
    name="toy",
)


def listed(violations: Sequence[Violation]) -> Refusal:
    return Refusal(422, [[v.target, v.missing, v.message] for v in violations])


def test_check_refuses_in_the_platforms_shape_and_names_missing_fields() -> None:
    refusal = refused(lambda: CONTRACT.check({"lines": [{"quantity": "1"}]}, listed))
    assert refusal.status == 422
    assert refusal.payload == [
        ["lines[0].id", "id", "'id' is a required property"],
        ["lines[0].quantity", None, "'1' is not of type 'integer'"],
    ]
    top = refused(lambda: CONTRACT.check({}, listed))
    assert top.payload == [["lines", "lines", "'lines' is a required property"]]
    assert CONTRACT.check({"lines": [{"id": "L", "quantity": 1}]}, listed) is None


def test_checked_body_parses_checks_and_returns_the_body() -> None:
    not_json = Refusal(400, {"message": "not JSON"})

    def checked(body: bytes) -> Any:
        return CONTRACT.checked_body(req("x", body=body), refuse=listed, not_json=not_json)

    assert checked(b'{"lines": []}') == {"lines": []}
    assert refused(lambda: checked(b"{nope")).payload == {"message": "not JSON"}
    assert refused(lambda: checked(b"\xff")).payload == {"message": "not JSON"}
    assert refused(lambda: checked(b'{"lines": 1}')).status == 422


# -- through a running sandbox ------------------------------------------------------------
@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox([Toy()], state_path=tmp_path / "state.json", clock=lambda: NOW) as sandbox:
        yield sandbox


def http_token(box: Sandbox) -> str:
    answer = requests.post(
        f"{box.base_url('toy')}/token",
        data={"grant_type": "client_credentials"},
        auth=(ID, SECRET),
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def test_the_server_answers_a_raised_refusal_with_its_headers_and_keeps_the_state(
    box: Sandbox, tmp_path: Path
) -> None:
    bearer = {"Authorization": f"Bearer {http_token(box)}"}
    answer = requests.post(f"{box.base_url('toy')}/busy", headers=bearer, timeout=5)
    assert answer.status_code == 429
    assert answer.json() == {"code": "SLOW_DOWN"}
    assert answer.headers["Retry-After"] == "7"
    saved = json.loads((tmp_path / "state.json").read_text())["toy"]
    assert saved["counter"] == 1  # changed before the refusal, and saved


def test_over_http_tokens_expire_when_the_sandbox_clock_moves_on(box: Sandbox) -> None:
    bearer = {"Authorization": f"Bearer {http_token(box)}"}
    assert requests.post(f"{box.base_url('toy')}/api", headers=bearer, timeout=5).ok
    box.advance(LIFETIME)
    late = requests.post(f"{box.base_url('toy')}/api", headers=bearer, timeout=5)
    assert (late.status_code, late.json()["why"]) == (401, "expired")


def test_a_token_outlives_the_process_through_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with Sandbox([Toy()], state_path=path, clock=lambda: NOW) as first:
        bearer = {"Authorization": f"Bearer {http_token(first)}"}
    with Sandbox([Toy()], state_path=path, clock=lambda: NOW + 60) as second:
        assert requests.post(f"{second.base_url('toy')}/api", headers=bearer, timeout=5).ok
    with Sandbox([Toy()], state_path=path, clock=lambda: NOW + LIFETIME) as third:
        assert (
            requests.post(f"{third.base_url('toy')}/api", headers=bearer, timeout=5).status_code
            == 401
        )


# -- the public module ------------------------------------------------------------------
KIT = ["Refusal", "StateError", "StateField", "StatefulEmulator", "TokenIssuer", "TokenStore"]


def test_the_kit_is_public_and_loads_only_when_asked() -> None:
    assert set(KIT) <= set(plugin.__all__)
    assert all(
        getattr(plugin, name).__module__.startswith("cancelkit.core.sandbox.") for name in KIT
    )
    probe = (
        "import sys, cancelkit.plugin\n"
        "loaded = [m for m in ('jsonschema', 'cancelkit.core.sandbox.tokens',"
        " 'cancelkit.core.sandbox.server') if m in sys.modules]\n"
        "print(loaded)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- the built-in emulators on the kit --------------------------------------------------
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: platform -> (the example's line changed for a second, different cancel).
SECOND_CANCEL = {
    "mirakl": {"line_id": "0002_3202630-A-2"},
    "carriyo": {"line_id": "line-cbl", "fulfillment_order_id": "FO-1001-2"},
    "salesforce": {"line_id": "0a4xx00000000W0002"},
}


@pytest.mark.parametrize("platform", sorted(SECOND_CANCEL))
def test_a_builtin_token_expires_on_the_sandbox_clock_and_the_client_renews_it(
    platform: str, sandbox: Sandbox, sandbox_client: Any
) -> None:
    first = json.loads((EXAMPLES / f"{platform}.json").read_text())
    first["lines"] = first["lines"][:1]
    change = dict(SECOND_CANCEL[platform])
    second = {**first, **{k: change.pop(k) for k in list(change) if k != "line_id"}}
    second["lines"] = [{**first["lines"][0], **change}]
    emulator = sandbox.emulators[platform]
    assert sandbox_client.send(first, platform).outcome in ("accepted", "cancelled")
    [old] = emulator.tokens
    sandbox.advance(emulator.tokens.issuer.lifetime)
    assert not emulator.tokens.live(old, sandbox.now())
    # The client still holds the old token: the platform's 401 makes it fetch a new one.
    assert sandbox_client.send(second, platform).outcome in ("accepted", "cancelled")
    assert len(emulator.tokens) == 2
