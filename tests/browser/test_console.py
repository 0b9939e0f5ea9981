"""The console in a real browser, as a team lead with only an admin key uses it: sign in, see
the numbers the API gives, onboard an agent (create, cap, key), see its first call, its spend
against the cap and its receipt verified in the page (and a receipt edited by one byte fail),
check the ledger's consistency, revoke the key. Calls are made with the official SDKs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Console, Shots
from tests.fakes.upstream import http_error, text
from tests.harness.gateway import AINFERA

pytestmark = pytest.mark.browser


def api(console: Console, path: str, key: str | None = None) -> Any:
    response = httpx.get(f"{console.url}{path}", timeout=30, headers={
        "x-api-key": key or console.admin_key, "x-ainfera-consistent": "true"})
    response.raise_for_status()
    return response.json()


def sign_in(page: Any, console: Console, key: str) -> None:
    page.goto(f"{console.url}/")
    expect(page).to_have_url(re.compile(r"/console/"))
    page.fill("#key", key)
    page.click("form.signin-form button[type=submit]")
    expect(page.locator("#who")).to_contain_text("acme")


def some_calls(console: Console) -> None:
    claude = anthropic.Anthropic(base_url=console.url, api_key=console.bot_key, max_retries=0)
    gpt = openai.OpenAI(base_url=f"{console.url}/v1", api_key=console.bot_key, max_retries=0)
    try:
        claude.messages.create(model="ainfera-inference", max_tokens=64,
                               messages=[{"role": "user", "content": "Hello"}])
        gpt.chat.completions.create(model="fake-claude",
                                    messages=[{"role": "user", "content": "Hi"}])
        console.fake.script("up-gemini", http_error(400, "invalid_request_error"))
        with pytest.raises(anthropic.BadRequestError):
            claude.messages.create(model="fake-gemini", max_tokens=16,
                                   messages=[{"role": "user", "content": "fail, please"}])
    finally:
        console.fake.script("up-gemini", text("Hello from up-gemini."))
        claude.close()
        gpt.close()


def test_a_team_lead_onboards_an_agent_with_only_an_admin_key(
        console: Console, page: Any, shots: Shots, artifacts: Path) -> None:
    some_calls(console)
    usage = api(console, "/v1/usage/daily?days=30&fill=zero")
    sign_in(page, console, console.admin_key)

    # Overview: the numbers are the API's, the chart adds up to them exactly.
    expect(page.locator("#total-calls")).to_have_text(str(usage["totals"]["calls"]))
    assert page.get_attribute("#total-spend", "data-usd") == usage["totals"]["cost_usd"]
    chart = page.locator("figure.chart-box")
    expect(chart).to_have_attribute("data-total", f"${usage['totals']['cost_usd']}")
    today = usage["days"][-1]
    expect(page.locator(f'g.bar[data-date="{today["date"]}"]')).to_have_attribute(
        "data-total", f"${today['cost_usd']}")
    page.click('[data-toggle="metric"] button[data-value="calls"]')
    expect(chart).to_have_attribute("data-total", str(usage["totals"]["calls"]))
    page.click('[data-toggle="split"] button[data-value="outcome"]')
    expect(page.locator('figure.chart-box[data-split="outcome"] .legend li[data-series="failed"]')
           ).to_have_count(1)
    page.click('[data-toggle="metric"] button[data-value="spend"]')
    page.click('[data-toggle="split"] button[data-value="agent"]')
    expect(page.locator('figure.chart-box[data-split="agent"] .legend li')).to_have_count(1)
    rollup = api(console, "/v1/caps/rollup")
    expect(page.locator('#rollup [data-k="agents"]')).to_have_text(str(rollup["agents"]))
    expect(page.locator("#p50")).to_have_text(f"{rollup['latency_p50_ms']:,} ms")
    shots.take(page, "overview")

    # Agents: create one with a cap, change the cap, issue its key.
    page.click('#nav a[data-page="agents"]')
    page.fill("#new-agent-name", "onboarded-bot")
    page.fill("#new-agent-cap", "1.00")
    page.click("#new-agent button[type=submit]")
    expect(page.locator("#notice")).to_contain_text("Agent onboarded-bot registered")
    row = page.locator('tr[data-agent="onboarded-bot"]')
    expect(row.locator('[data-k="cap"]')).to_contain_text("$1.00")
    row.locator('[data-action="manage"]').click()
    detail = row.locator("xpath=following-sibling::tr[1]")
    detail.locator('input[data-field="cap"]').fill("0.50")
    detail.locator('form[data-form="cap"] button[type=submit]').click()
    expect(page.locator("#notice")).to_contain_text("now $0.50")
    row = page.locator('tr[data-agent="onboarded-bot"]')
    expect(row.locator('[data-k="cap"]')).to_contain_text("$0.50")
    detail = row.locator("xpath=following-sibling::tr[1]")  # still open after the change
    detail.locator('[data-action="issue-key"]').click()
    new_key = page.locator("#new-key").inner_text().strip()
    assert new_key.startswith("ak_")
    # The key list is read again: the new key is listed (by its hint, never the secret).
    keys = page.locator('tr[data-agent="onboarded-bot"]').locator(
        "xpath=following-sibling::tr[1]").locator("tr[data-key-id]")
    expect(keys).to_have_count(1)
    expect(keys.first).to_contain_text(new_key[:7])
    expect(keys.first).not_to_contain_text(new_key)
    shots.take(page, "agents")

    # Its first call, with the key the page showed once.
    client = anthropic.Anthropic(base_url=console.url, api_key=new_key, max_retries=0)
    message = client.messages.create(model="ainfera-inference", max_tokens=64,
                                     messages=[{"role": "user", "content": "First call"}])
    client.close()
    mine = api(console, "/v1/inferences?agent=onboarded-bot")["data"]
    assert [r["id"] for r in mine] == [message.id]
    cost = mine[0]["cost_usd"]
    assert cost is not None
    assert cost != "0"

    # Its spend against the cap, exactly what the ledger debited.
    page.reload()
    row = page.locator('tr[data-agent="onboarded-bot"]')
    expect(row.locator('[data-k="spend-today"] .money')).to_have_attribute("data-usd", cost)
    expect(row.locator('[data-k="keys"]')).to_have_text("1")
    page.click('#nav a[data-page="overview"]')
    capped = page.locator(".cap-list li", has_text="onboarded-bot")
    expect(capped.locator(".money").first).to_have_attribute("data-usd", cost)
    # The cap as the read model holds it: whole nano-dollars, rendered without trailing zeros.
    expect(capped.locator(".money").nth(1)).to_have_attribute("data-usd", "0.5")

    # The audit trail names the admin key for each change.
    page.click('#nav a[data-page="agents"]')
    audit = page.locator("#audit tbody tr")
    expect(audit.first).to_contain_text("issued key")
    expect(page.locator('#audit tr[data-type="SpendPolicySet"]').first).to_contain_text(
        "set the daily cap of agent 'onboarded-bot' to $0.50")
    expect(page.locator('#audit tr[data-type="AgentRegistered"]').first).to_contain_text(
        "admin ak_")

    # Inferences: filtered to the new agent, then the call itself.
    page.click('#nav a[data-page="inferences"]')
    page.select_option("#f-agent", label="onboarded-bot")
    page.click("#filters button[type=submit]")
    rows = page.locator("#inferences tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", message.id)
    shots.take(page, "inferences")
    rows.first.click()
    expect(page.locator("#inference-id")).to_have_text(message.id)
    for kind in ("Routed", "Dispatched", "Completed", "Debited"):
        expect(page.locator(f'#timeline li[data-type="{kind}"]')).to_have_count(1)
    expect(page.locator("#candidates tr.chosen")).to_have_count(1)
    expect(page.locator("#headers")).to_contain_text(f"x-ainfera-inference-id: {message.id}")
    assert page.get_attribute("#cost", "data-usd") == cost

    # Its receipt, verified in the page against the published key (and by the CLI).
    vkey = httpx.get(f"{console.url}/v1/ledger/public-key", timeout=30).json()["vkey"]
    expect(page.locator("#vkey")).to_have_value(vkey)
    page.click("#verify")
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-verdict", "verified")
    expect(verdict).to_contain_text("Receipt verifies")
    expect(verdict).to_contain_text(vkey.split("+")[1])
    shots.take(page, "inference")
    with page.expect_download() as download:
        page.click("#download")
    receipt = artifacts / f"{message.id}.receipt.json"
    download.value.save_as(receipt)
    checked = subprocess.run([AINFERA, "receipt", "verify", str(receipt), "--vkey", vkey],
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stderr

    # One byte edited: the page names the check that fails, as the CLI does.
    data = receipt.read_bytes()
    at = data.index(b'"request_id":"req_') + len(b'"request_id":"req_')
    edited = data[:at] + (b"0" if data[at:at + 1] != b"0" else b"1") + data[at + 1:]
    tampered = artifacts / f"{message.id}.edited.receipt.json"
    tampered.write_bytes(edited)
    page.set_input_files("#receipt-file", str(tampered))
    expect(verdict).to_have_attribute("data-verdict", "failed")
    expect(verdict).to_contain_text("does NOT verify")
    expect(page.locator("#verdict-reason")).to_contain_text(
        "leaf_hash at leaf")
    cli = subprocess.run([AINFERA, "receipt", "verify", str(tampered), "--vkey", vkey],
                         capture_output=True, text=True, timeout=60, check=False)
    assert cli.returncode == 1
    assert page.locator("#verdict-reason").inner_text() in cli.stderr
    shots.take(page, "inference-tampered")

    # Revoking the key from the page stops its calls.
    page.on("dialog", lambda dialog: dialog.accept())
    page.click('#nav a[data-page="agents"]')
    row = page.locator('tr[data-agent="onboarded-bot"]')
    row.locator('[data-action="manage"]').click()
    row.locator("xpath=following-sibling::tr[1]").locator('[data-action="revoke"]').click()
    expect(page.locator("#notice")).to_contain_text("revoked")
    refused = _call_until_refused(console, new_key)
    assert isinstance(refused, anthropic.AuthenticationError)


def _call_until_refused(console: Console, key: str) -> Exception | None:
    import time

    client = anthropic.Anthropic(base_url=console.url, api_key=key, max_retries=0)
    deadline = time.monotonic() + 15  # revocations apply within the 1 s auth cache
    try:
        while time.monotonic() < deadline:
            try:
                client.messages.create(model="fake-gpt", max_tokens=8,
                                       messages=[{"role": "user", "content": "still?"}])
            except anthropic.AuthenticationError as exc:
                return exc
            time.sleep(0.3)
    finally:
        client.close()
    return None


def test_the_ledger_page_checks_the_checkpoint_and_consistency(
        console: Console, page: Any, shots: Shots) -> None:
    some_calls(console)
    sign_in(page, console, console.admin_key)
    page.click('#nav a[data-page="ledger"]')
    note = httpx.get(f"{console.url}/v1/ledger/checkpoint", timeout=30).text
    expect(page.locator("#head-signature")).to_contain_text("verified here")
    size = int(page.locator("#tree-size").inner_text().replace(",", ""))
    assert size >= int(note.splitlines()[1])
    expect(page.locator("#checkpoints tbody tr").first).to_be_visible()
    page.click("#check-consistency")
    expect(page.locator("#consistency-verdict")).to_have_attribute("data-verdict", "verified")
    shots.take(page, "ledger")
    # A checkpoint signed by another key is refused, naming the check.
    page.select_option("#older", "pasted")
    forged = note.split("\n\n")[0] + "\n\n\u2014 ainfera.local/ledger AAAAAAAA" + "A" * 84 + "\n"
    page.fill("#older-note", forged)
    page.click("#check-consistency")
    expect(page.locator("#consistency-verdict")).to_have_attribute("data-verdict", "failed")
    expect(page.locator("#consistency-verdict")).to_contain_text("older_checkpoint")


def test_an_agent_key_sees_its_own_agent_and_no_admin_actions(
        console: Console, page: Any, shots: Shots) -> None:
    some_calls(console)
    sign_in(page, console, console.bot_key)
    expect(page.locator('#who [data-scope="agent"]')).to_contain_text("bot")
    own = api(console, f"/v1/usage/daily?days=30&agent={console.bot_id}", console.bot_key)
    expect(page.locator("#total-calls")).to_have_text(str(own["totals"]["calls"]))
    expect(page.locator("#own-metrics")).to_be_visible()
    expect(page.locator("#rollup")).to_have_count(0)  # the tenant's rollup is an admin's view
    page.click('#nav a[data-page="agents"]')
    expect(page.locator("#own-agent")).to_contain_text(console.bot_id)
    expect(page.locator("#new-agent")).to_have_count(0)
    page.click('#nav a[data-page="inferences"]')
    expect(page.locator("#f-agent")).to_have_count(0)
    listed = api(console, "/v1/inferences", console.bot_key)["data"]
    expect(page.locator("#inferences tbody tr")).to_have_count(len(listed))
    shots.take(page, "agent-key-inferences")
    page.click("#sign-out")
    expect(page.locator("#key")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_bad_key_is_refused_in_place(console: Console, page: Any) -> None:
    page.goto(f"{console.url}/console/")
    page.fill("#key", "ak_not-a-real-key")
    page.click("form.signin-form button[type=submit]")
    expect(page.locator("#signin-error")).to_have_text("This key is not valid, or it was revoked.")
    assert page.evaluate("sessionStorage.length") == 0
