"""The conformance suite: the checks every platform plugin must pass, as a base class.

A plugin's test module subclasses :class:`PlatformConformance` with a few
attributes and pytest collects the inherited tests::

    from cancelkit.plugin import Contract
    from cancelkit.testing import PlatformConformance

    import cancelkit_toyshop.plugin


    class TestToyshopConformance(PlatformConformance):
        platform = "toyshop"
        plugin = cancelkit_toyshop.plugin
        contract = Contract.packaged("cancelkit_toyshop", "contracts/cancel.schema.json")
        cassettes = Path(__file__).parent / "cassettes"

Each test fails when its property is broken; none needs the network (only
loopback servers: the sandbox, a recording proxy in front of it).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from . import checks
from .faults import FaultCase, cases_for
from .hostile import HOSTILE_IDS
from .leaks import (
    canary,
    cassette_patterns,
    leaks,
    secret_values,
    sent_credentials,
    token_prefix,
    undeclared_secrets,
)
from .subject import Subject, resolve

if TYPE_CHECKING:
    from hypothesis import settings as Settings

    from cancelkit.core.adapter import PlatformAdapter
    from cancelkit.core.model import CancelRequest
    from cancelkit.core.sandbox.contract import Contract
    from cancelkit.core.sandbox.emulator import Emulator
    from cancelkit.core.scenario import Scenario

    from .harness import Harness

#: Resolved subjects, one per conformance class.
_SUBJECTS: dict[type, Subject] = {}
#: The statuses a platform's API is made to answer with when echoing credentials back.
ECHO_STATUSES = (400, 401, 403, 500)


class PlatformConformance:
    """Subclass it (as ``Test<Platform>Conformance``) to run the conformance suite.

    Give ``platform`` and ``plugin`` (the module or object with the plugin's
    hooks), or ``adapter`` and ``emulator``; and ``contract``. The rest is optional.
    """

    #: The platform under test (an adapter name); defaults to ``adapter.name``.
    platform: ClassVar[str] = ""
    #: The plugin (module or object) whose hooks provide the platform, its emulator,
    #: example and scenarios. The suite builds a registry with only this plugin.
    plugin: ClassVar[object | None] = None
    #: Or the adapter itself (with ``emulator``), for a plugin not written yet.
    adapter: ClassVar[PlatformAdapter | None] = None
    #: Makes a fresh emulator (usually the class); default: the plugin's for ``platform``.
    emulator: ClassVar[Callable[[], Emulator] | None] = None
    #: The platform's published request contract that every translated body must meet.
    contract: ClassVar[Contract]
    #: Check bodies against ``#/$defs/<name>`` of the contract instead of its root.
    contract_definition: ClassVar[str | None] = None
    #: Example requests; default: the plugin's ``cancelkit_examples()[platform]``.
    examples: ClassVar[Sequence[Mapping[str, Any]] | None] = None
    #: The folder holding ``<platform>/<scenario>.yaml``; None skips the cassette checks.
    cassettes: ClassVar[Path | None] = None
    #: Default: the plugin's ``cancelkit_cassette_scenarios()`` for ``platform``.
    scenarios: ClassVar[Sequence[Scenario] | None] = None
    #: The first example's outcome in the sandbox with no fault; default ``accepted``
    #: for an asynchronous platform, ``cancelled`` for a synchronous one.
    expected_outcome: ClassVar[str | None] = None
    #: Property-test examples per property (default 50); a loaded hypothesis profile
    #: with a ``max_examples`` other than hypothesis' own default wins.
    max_examples: ClassVar[int | None] = None
    #: The ids sent in every place an id goes into a URL.
    hostile_ids: ClassVar[Sequence[str]] = HOSTILE_IDS
    #: A request the emulator must refuse, as for an order it does not know. Default:
    #: the first example with its order id and fulfillment order id (with neither,
    #: its line ids) mirrored into ids of the same shape no emulator seeds (``O-1``
    #: becomes ``L-8``). Set it where those ids cannot be made unknown that way.
    refused_example: ClassVar[Mapping[str, Any] | None] = None

    # -- plumbing ---------------------------------------------------------------
    @classmethod
    def subject(cls) -> Subject:
        """The platform under test, resolved from the class attributes once."""
        if cls not in _SUBJECTS:
            _SUBJECTS[cls] = resolve(cls)
        return _SUBJECTS[cls]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """One test per fault the emulator takes, and per recorded scenario."""
        if "conformance_fault" in metafunc.fixturenames:
            cases = cases_for(tuple(self.subject().emulator().faults))
            metafunc.parametrize("conformance_fault", cases, ids=[c.name for c in cases])
        if "conformance_scenario" in metafunc.fixturenames:
            scenarios = self.subject().scenarios if self.cassettes is not None else []
            metafunc.parametrize("conformance_scenario", scenarios, ids=[s.name for s in scenarios])

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_harness(cls) -> Iterator[Harness]:
        """One sandbox of the emulator for the class (reset before each use)."""
        from .harness import Harness

        harness = Harness(cls.subject())
        yield harness
        harness.close()

    @pytest.fixture
    def conformance_isolated(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """No CANCELKIT_* variable, config file or ledger of the author's, no rate window."""
        from cancelkit.core.ratelimit import reset_all

        from .plugin import isolate

        isolate(monkeypatch, tmp_path)
        reset_all()

    @classmethod
    def hypothesis_settings(cls) -> Settings:
        """Modest settings: ``max_examples`` (50 by default) per property, no deadline,
        no example database written into the author's repository. A hypothesis profile
        loaded with a ``max_examples`` of its own (``--hypothesis-profile``) wins."""
        from hypothesis import HealthCheck, settings

        active = settings.default.max_examples if settings.default else 100
        chosen = active if active != 100 else (cls.max_examples or 50)
        return settings(
            max_examples=chosen,
            deadline=None,
            database=None,
            print_blob=True,  # a failure prints how to reproduce it
            suppress_health_check=list(HealthCheck),
        )

    # -- examples and the contract ------------------------------------------------
    def test_examples_translate_and_meet_the_contract(self, conformance_isolated: None) -> None:
        """Every example translates; every body it sends satisfies the published contract."""
        subject = self.subject()
        client = subject.offline_client()
        problems, checked = [], 0
        for index, request in enumerate(subject.prepared(client)):
            call = checks.cancel_call(subject, client, request)
            if call.body is None:
                continue
            checked += 1
            body = json.loads(call.body_bytes() or b"null")
            for violation in self.contract.violations(body, definition=self.contract_definition):
                problems.append(f"examples[{index}]: {violation.field}: {violation.message}")
        assert not problems, "bodies breaking the contract:\n" + "\n".join(problems)
        if not checked:
            pytest.skip("no example translates to a call with a body")

    def test_the_example_reaches_its_outcome_in_the_sandbox(
        self, conformance_harness: Harness, conformance_isolated: None
    ) -> None:
        """With nothing going wrong, the first example ends as the platform promises."""
        from .matrix import traits

        subject, harness = self.subject(), conformance_harness
        harness.reset()
        with subject.client(harness.box.client_config(), harness.clock) as client:
            result = client.send(subject.example(), subject.platform)
        usual = traits(subject, harness.box.client_config(), self.expected_outcome)
        assert result.outcome == usual.normal, result

    # -- secrets ----------------------------------------------------------------
    def test_no_secret_in_any_rendering(self, conformance_isolated: None) -> None:
        """Canary values in the secret settings appear in no rendering of a call.

        What the adapter returns is checked as it is (the client would mask it
        again): translate's call, the status and lookup calls, rendered as JSON,
        curl and raw HTTP, their repr and dict; the authenticator's and the settings'
        repr; and any error on the way. Twice: the sandbox's credentials replaced by
        canaries, and every secret setting a canary.
        """
        subject = self.subject()
        secret_names = [s.name for s in subject.adapter.capabilities.settings if s.secret]
        canaries = {name: canary(name) for name in secret_names}
        used = subject.emulator().client_settings("")
        shown = []
        for changes in ({k: v for k, v in canaries.items() if k in used}, canaries):
            shown += checks.renderings(subject, subject.offline_client(**changes))
        found = leaks("\n".join(shown), canaries.values())
        assert not found, f"secret settings shown: {found}"

    def test_no_secret_leaves_a_send(
        self,
        conformance_harness: Harness,
        conformance_isolated: None,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Answers that repeat the request back never carry a credential out of the client.

        A proxy in front of the sandbox answers the API with 400, 401, 403 and 500,
        repeating the request's headers and body in the error body and headers. Token
        calls get a real token from the emulator; or every secret setting is a canary;
        or the token request itself is refused with an echo. Results, errors (str,
        repr, field errors) and DEBUG logs must hold none of the secrets, nor a token
        obtained at run time. A setting whose value goes out as a credential (in an
        authenticator's header, Basic auth or a token request's secret field) must
        be declared ``secret=True``: nothing masks it otherwise.
        """
        from .wire import echo_answer, proxied

        subject, harness = self.subject(), conformance_harness
        secret_names = [s.name for s in subject.adapter.capabilities.settings if s.secret]
        base = harness.emulator.client_settings("")
        canaries = {name: canary(name) for name in secret_names}
        swapped = {name: canary(name) for name in secret_names if name in base}
        runs: list[tuple[str, dict[str, str], int, int | None]] = [
            (f"sandbox credentials, API answers {status}", {}, status, None)
            for status in ECHO_STATUSES
        ]
        runs += [
            (f"every secret setting a canary, API answers {status}", canaries, status, 401)
            for status in ECHO_STATUSES
        ]
        runs += [
            (f"a token request refused with {code}", swapped, 400, code) for code in (400, 401)
        ]
        caplog.set_level(logging.DEBUG)
        problems = []
        undeclared: dict[str, str] = {}
        for name, changes, status, token_status in runs:
            harness.reset()
            caplog.clear()

            def answer(
                received: Any, status: int = status, token: int | None = token_status
            ) -> Any:
                if harness.is_token_received(received):
                    return None if token is None else echo_answer(token, received)
                return echo_answer(status, received)

            credential_headers: set[str] = set()
            with proxied(harness.box.url, answer) as proxy:
                config = subject.config_at(proxy.url, **changes)
                out = checks.send_and_render(subject, config, harness.clock, credential_headers)
                echoed = proxy.take()
            for exchange in echoed:
                request = exchange.request
                sent = sent_credentials(
                    request.headers,
                    request.body,
                    credential_headers,
                    harness.is_token_received(request),
                )
                settings = config[harness.emulator.platform]
                for setting, where in undeclared_secrets(settings, secret_names, sent).items():
                    undeclared.setdefault(setting, where)
            secrets = [*secret_values(config[harness.emulator.platform], secret_names)]
            secrets += harness.issued_tokens()
            if not changes and not echoed:  # with the sandbox's own credentials it must go out
                problems.append(f"{name}: nothing reached the echo server ({out})")
            found = leaks(out + "\n" + caplog.text, secrets)
            if found:
                problems.append(f"{name}: {found} in {out[:300]!r}")
            if echoed and not caplog.records:
                problems.append(f"{name}: no DEBUG log was written to check")
        problems += [
            f"setting {setting!r} is sent as a credential ({where}) but not declared "
            f"Setting({setting!r}, ..., secret=True): repr(settings), logs and errors show it"
            for setting, where in undeclared.items()
        ]
        assert not problems, "\n".join(problems)

    # -- ids in the URL -----------------------------------------------------------
    def test_every_path_id_arrives_as_one_segment(
        self, conformance_harness: Harness, conformance_isolated: None
    ) -> None:
        """Every id that goes into the URL arrives as one segment that decodes back to it.

        Read off the socket of a proxy in front of the sandbox, byte for byte: an
        HTTP library may turn ``%2E%2E`` back into ``..``, which a server collapses.
        A hostile id refused as bad input is sent again after the marker (``1001#``
        passes a prefix match). Then every call is built offline as well - ``translate``,
        ``lookup_call`` with ``complete`` and ``translate`` after it, ``next_call``,
        ``status_call`` - since the emulator may refuse an unknown id before the
        calls after it are sent. A request field refused for every marker, the
        example's own value included, fails: it could not be checked.
        """
        from .offline import offline_problems
        from .places import WireCheck, candidates
        from .wire import proxied

        subject, harness = self.subject(), conformance_harness
        harness.reset()
        problems, places = [], []
        with proxied(harness.box.url) as proxy:
            check = WireCheck(subject, proxy, harness)
            try:
                for candidate in candidates(subject):
                    place = check.find(candidate)
                    if place is not None:
                        places.append(place)
                problems += check.unprobed
                for place in places:
                    for hostile in self.hostile_ids:
                        problems += check.problems(place, hostile)
            finally:
                check.close()
        found_offline, built = offline_problems(subject, harness, self.hostile_ids)
        problems += found_offline
        assert not problems, f"{len(problems)} ids changed the URL:\n" + "\n".join(problems)
        if not places and not built:
            pytest.skip("no value of the examples, tracking id or settings goes into a URL")

    # -- reasons ------------------------------------------------------------------
    def test_every_reason_is_mapped_or_refused(self, conformance_isolated: None) -> None:
        """Each canonical reason reaches the call as its platform value, or is refused
        as bad input naming the reasons accepted; a platform without a reason field
        warns that it ignores it. None is dropped in silence. The body of every mapped
        reason, and of every ``platform_reasons`` value, meets the contract."""
        from cancelkit.core.model import REASONS
        from cancelkit.errors import InvalidRequestError

        subject = self.subject()
        caps = subject.adapter.capabilities
        client = subject.offline_client()
        base = checks.without_reasons(subject.example())
        problems = []
        for reason in REASONS:
            request = {**copy.deepcopy(base), "reason": reason}
            try:
                prepared = client.prepare(request, subject.platform)
                call = checks.cancel_call(subject, client, prepared)
            except InvalidRequestError as error:
                problems += checks.refusal_problems(reason, error, caps.reasons, caps.other_reason)
                continue
            if not caps.takes_reason:
                if not any(reason in w for w in subject.adapter.warnings(prepared)):
                    problems.append(f"{reason}: dropped without a warning")
                continue
            value = caps.reasons.get(reason, caps.other_reason)
            if value is None:
                problems.append(f"{reason}: translated, though neither mapped nor refused")
            elif value not in checks.strings_of(call):
                problems.append(f"{reason}: mapped to {value!r}, which the call does not carry")
            problems += checks.contract_problems(
                f"{reason} (sent as {value!r})", call, self.contract, self.contract_definition
            )
        for raw in caps.platform_reasons:
            request = {**copy.deepcopy(base), "platform_reason": raw}
            try:
                call = checks.cancel_call(
                    subject, client, client.prepare(request, subject.platform)
                )
            except InvalidRequestError as error:
                problems.append(f"platform_reason {raw!r}: listed, but refused: {error}")
                continue
            problems += checks.contract_problems(
                f"platform_reason {raw!r}", call, self.contract, self.contract_definition
            )
        assert not problems, "\n".join(problems)

    # -- answers no normaliser expects -------------------------------------------
    def test_normalise_never_raises(
        self, conformance_harness: Harness, conformance_isolated: None
    ) -> None:
        """``normalise`` returns a result for any body, status and headers (hypothesis)."""
        from hypothesis import given
        from hypothesis import strategies as st

        from cancelkit.core.http import HttpResponse
        from cancelkit.core.model import OUTCOMES, CancelResult

        from .hostile import ODD_BODIES, ODD_HEADERS, STATUSES, answer_texts

        subject = self.subject()
        requests = subject.prepared(subject.offline_client())
        for request in requests:  # every odd body at every status, before the random ones
            for status in STATUSES:
                for body in ODD_BODIES:
                    response = HttpResponse(status, {"Retry-After": "soon"}, body)
                    outcome = subject.adapter.normalise(request, response).outcome
                    assert outcome in OUTCOMES, (status, body, outcome)
        seeds = self._answer_seeds(conformance_harness)

        @self.hypothesis_settings()
        @given(
            request=st.sampled_from(requests),
            status=st.sampled_from(STATUSES) | st.integers(100, 599),
            headers=st.sampled_from(ODD_HEADERS),
            text=answer_texts(seeds),
        )
        def check(request: CancelRequest, status: int, headers: dict[str, str], text: str) -> None:
            result = subject.adapter.normalise(request, HttpResponse(status, headers, text))
            assert isinstance(result, CancelResult), result
            assert result.outcome in OUTCOMES, result.outcome

        check()

    def test_normalise_status_never_raises(
        self, conformance_harness: Harness, conformance_isolated: None
    ) -> None:
        """``normalise_status`` returns a result for any answer (hypothesis)."""
        from hypothesis import given
        from hypothesis import strategies as st

        from cancelkit.core.http import HttpResponse
        from cancelkit.core.model import OUTCOMES, CancelResult

        from .hostile import ODD_BODIES, ODD_HEADERS, STATUSES, answer_texts

        subject = self.subject()
        if not subject.adapter.capabilities.has_status:
            pytest.skip(f"{subject.platform} has no status call")
        for status in STATUSES:
            for body in ODD_BODIES:
                response = HttpResponse(status, {}, body)
                outcome = subject.adapter.normalise_status("T-1", response).outcome
                assert outcome in OUTCOMES, (status, body, outcome)
        seeds = self._answer_seeds(conformance_harness)

        @self.hypothesis_settings()
        @given(
            tracking_id=st.sampled_from(["T-1", "0", "a/b", "日本"]),
            status=st.sampled_from(STATUSES) | st.integers(100, 599),
            headers=st.sampled_from(ODD_HEADERS),
            text=answer_texts(seeds),
        )
        def check(tracking_id: str, status: int, headers: dict[str, str], text: str) -> None:
            response = HttpResponse(status, headers, text)
            result = subject.adapter.normalise_status(tracking_id, response)
            assert isinstance(result, CancelResult), result
            assert result.outcome in OUTCOMES, result.outcome

        check()

    def _answer_seeds(self, harness: Harness) -> list[Any]:
        """Real answers of the platform, parsed: the emulator's to the examples (and a
        status call), and every answer in the cassettes."""
        subject = self.subject()
        harness.reset()
        with subject.client(harness.box.client_config(), harness.clock) as client:
            for index in range(len(subject.examples)):
                request = subject.example(index)
                result = checks.quietly(lambda: client.send(request, subject.platform))  # noqa: B023
                tracking = getattr(result, "tracking_id", None)
                if tracking and subject.adapter.capabilities.has_status:
                    checks.quietly(lambda: client.wait(result))  # noqa: B023
        seeds = [checks.json_or_none(answer.body) for _, answer in harness.api_calls()]
        seeds += self._cassette_answers()
        return [seed for seed in seeds if isinstance(seed, (dict, list))]

    def _cassette_answers(self) -> list[Any]:
        import yaml

        if self.cassettes is None:
            return []
        found = []
        for path in sorted((self.cassettes / self.subject().platform).rglob("*.yaml")):
            for interaction in (yaml.safe_load(path.read_text()) or {}).get("interactions", []):
                body = interaction.get("response", {}).get("body", {}).get("string")
                if body:
                    found.append(checks.json_or_none(body))
        return found

    # -- what the emulator refuses ----------------------------------------------------
    def test_an_unknown_order_is_not_reported_cancelled(
        self, conformance_harness: Harness, conformance_isolated: None
    ) -> None:
        """A cancel of an order the emulator does not know (``refused_example``) ends
        ``rejected`` (or ``unknown``), never ``cancelled``, ``accepted`` or ``partial``:
        a normaliser reading an error answer as success fails here. An ``accepted``
        answer is followed with status calls to its end first."""
        from cancelkit.errors import InvalidRequestError

        subject, harness = self.subject(), conformance_harness
        request, what = checks.refused_request(subject, self.refused_example)
        if request is None:
            pytest.skip(what)
        harness.reset()
        with subject.client(harness.box.client_config(), harness.clock) as client:
            try:
                result = client.send(request, subject.platform)
            except InvalidRequestError as error:
                pytest.fail(
                    f"{what} was refused as bad input, so never sent ({error}); set "
                    "`refused_example` to a valid request for an order the emulator does not know"
                )
            if result.outcome == "accepted" and result.tracking_id:
                result = client.wait(result)
        assert result.outcome in ("rejected", "unknown"), (
            f"{what}: ended {result.outcome!r} (HTTP {result.http_status}"
            f"{': ' + result.message if result.message else ''}); "
            "an answer refusing it must not read as success"
        )

    def test_the_emulator_refuses_a_body_breaking_the_contract(
        self, conformance_harness: Harness, conformance_isolated: None
    ) -> None:
        """The emulator judges bodies by the contract: the first example's cancel call,
        its body changed so the contract refuses it (a property it requires removed,
        found by asking the contract), sent straight to the sandbox, gets a 4xx."""
        from dataclasses import replace

        subject, harness = self.subject(), conformance_harness
        harness.reset()
        with subject.client(harness.box.client_config(), harness.clock) as client:
            call = checks.cancel_call(
                subject, client, client.prepare(subject.example(), subject.platform)
            )
            if call.body is None:
                pytest.skip("the first example's cancel call has no body to break")
            body = json.loads(call.body_bytes() or b"null")
            broken = checks.contract_breaking(body, self.contract, self.contract_definition)
            if broken is None:
                pytest.skip("no property removed, nor a body of another type, breaks the contract")
            changed, how = broken
            answer = checks.deliver(subject, client, replace(call, body=changed))
        status = None if answer is None else answer.status
        assert status is not None and 400 <= status < 500 and status not in (401, 403), (
            f"the cancel call's body {how} (the contract refuses it) got "
            f"{'no answer' if answer is None else f'HTTP {status}: {answer.text[:200]}'}, "
            "not a 4xx: the emulator must judge bodies by the published contract"
        )

    # -- the fault matrix -----------------------------------------------------------
    def test_fault_gives_the_contract_outcome(
        self,
        conformance_harness: Harness,
        conformance_isolated: None,
        conformance_fault: FaultCase,
    ) -> None:
        """The fault injected into the cancel call ends as the core contract says."""
        from .matrix import problems, run_cell, traits

        subject, case = self.subject(), conformance_fault
        config = conformance_harness.box.client_config()
        expected = case.expected(traits(subject, config, self.expected_outcome))
        cell = run_cell(subject, conformance_harness, case)
        found = problems(case, expected, cell)
        assert not found, f"{case.name}: " + "; ".join(found) + f" ({cell.message})"

    # -- cassettes ------------------------------------------------------------------
    def _cassette_folder(self) -> Path:
        if self.cassettes is None:
            pytest.skip("no cassettes folder given (set `cassettes`)")
        return self.cassettes

    def test_every_scenario_has_a_cassette(self) -> None:
        """Each scenario of the platform has its cassette, and no cassette is orphaned."""
        folder = self._cassette_folder()
        platform = self.subject().platform
        on_disk = {p.relative_to(folder).as_posix() for p in (folder / platform).rglob("*.yaml")}
        wanted = {s.cassette for s in self.subject().scenarios}
        assert on_disk == wanted, (
            f"missing: {sorted(wanted - on_disk)}; without a scenario: {sorted(on_disk - wanted)}"
        )

    def test_no_cassette_holds_a_secret(self, conformance_harness: Harness) -> None:
        """No cassette holds a sandbox credential, a token it issued, or an unmasked one."""
        folder = self._cassette_folder()
        subject, harness = self.subject(), conformance_harness
        secret_names = [s.name for s in subject.adapter.capabilities.settings if s.secret]
        settings = harness.emulator.client_settings("http://x")
        secrets = secret_values(settings, [*secret_names, "client_secret", "access_token"])
        self._answer_seeds(harness)  # runs the examples: the emulator issues its tokens
        prefixes = {token_prefix(t) for t in harness.issued_tokens()}
        patterns = cassette_patterns(secrets, prefixes)
        problems = []
        for path in sorted((folder / subject.platform).rglob("*.yaml")):
            text = path.read_text()
            problems += [f"{path}: {p.pattern}" for p in patterns if p.search(text)]
        assert not problems, "\n".join(problems)

    def test_cassette_replays_to_its_outcome(
        self, conformance_isolated: None, conformance_scenario: Scenario
    ) -> None:
        """The scenario replays from its cassette alone (record mode none, network
        blocked) to the outcome it declares."""
        from .recording import Replayer

        folder = self._cassette_folder()
        replayer = Replayer(self.subject().fresh_registry)
        outcome = replayer(conformance_scenario, folder)
        assert outcome == conformance_scenario.expected_outcome
