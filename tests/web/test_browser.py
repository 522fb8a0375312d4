"""The adjuster workspace in a real headless Chromium against a real uvicorn server.

Sign in, open the queue, open a flagged claim, correct a finding, draw a new one, approve;
then check the database and the audit log. The claim page's screenshot is saved under
test-artifacts/ for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from cdat.settings import Settings
from mobile_api.api.app import create_app
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.worker.tasks import assess_claim
from tests import images
from tests.conftest import REPO_ROOT, claim_body
from tests.live import live_server
from tests.web.conftest import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


@pytest.fixture
def server(settings: Settings, runtime: Runtime) -> Iterator[str]:
    """The app under uvicorn on 127.0.0.1 and a random free port."""
    with live_server(create_app(settings, runtime)) as base:
        yield base


def flagged_claim(base: str) -> str:
    """A claim sent to review (its photo has no capture time), via the policyholder API."""
    with httpx.Client(base_url=base) as api:
        created = api.post("/v1/claims", json=claim_body()).json()
        headers = {"Authorization": f"Bearer {created['access_token']}"}
        photo = images.jpeg(640, 480, color=(205, 205, 210))
        files = [("files", ("front.jpg", photo, "image/jpeg"))]
        stored = api.post(f"/v1/claims/{created['id']}/photos", files=files, headers=headers)
        assert stored.status_code == 201, stored.text
        job = api.post(f"/v1/claims/{created['id']}/submit", headers=headers).json()["job"]["id"]
        assess_claim.run(job)
        assert api.get(f"/v1/claims/{created['id']}", headers=headers).json()["status"] == (
            "needs_review"
        )
    return str(created["id"])


def test_adjuster_reviews_corrects_and_approves_a_flagged_claim_in_chromium(
    server: str, runtime: Runtime, adjuster: str
) -> None:
    from playwright.sync_api import expect, sync_playwright

    claim_id = flagged_claim(server)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        try:
            # sign in: the queue sends an anonymous visitor to the sign-in page
            page.goto(f"{server}/adjuster/")
            expect(page.get_by_role("heading", name="Adjuster sign-in")).to_be_visible()
            page.get_by_label("Email").fill(adjuster)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            # the queue lists the flagged claim with its reason
            expect(page.get_by_role("heading", name="Claims needing review")).to_be_visible()
            row = page.locator("table.queue tr", has_text=claim_id)
            expect(row).to_contain_text("fraud signal")
            row.get_by_role("link").click()
            expect(page.locator("h1")).to_contain_text("POL-12345")
            total_before = page.locator("#estimate-total").inner_text()
            # correct the model's finding: a severe dent that is a minor scratch
            edit = page.locator("form.edit-damage").first
            edit.get_by_label("damage type").select_option("scratch")
            edit.get_by_label("severity").select_option("minor")
            edit.get_by_role("button", name="Save").click()
            expect(page.locator("tr.damage-row").first).to_contain_text("edited")
            assert page.locator("#estimate-total").inner_text() != total_before
            # draw a box on the photo for a damage the model missed
            add = page.locator("form.add-damage").first
            add.get_by_role("button", name="Draw box").click()
            box = page.locator("svg.overlay").first.bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.1)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.4, steps=5)
            page.mouse.up()
            expect(add.locator(".shape-state")).to_have_text("box drawn")
            add.get_by_label("new damage type").select_option("crack")
            add.get_by_label("new part").select_option("hood")
            add.get_by_role("button", name="Add").click()
            expect(page.locator("tr.damage-row")).to_have_count(2)
            expect(page.locator("svg.overlay g.damage")).to_have_count(2)
            # overlay layers toggle
            page.get_by_label("part labels").uncheck()
            expect(page.locator("svg .part-label").first).to_be_hidden()
            page.get_by_label("part labels").check()
            expect(page.locator("svg .part-label").first).to_be_visible()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "adjuster-claim.png"), full_page=True)
            # approve
            page.locator("#approve").click()
            expect(page.locator("h1 .status")).to_have_text("approved")
            expect(page.locator("ol.audit")).to_contain_text("claim.approved")
        finally:
            browser.close()
    with runtime.sessions() as session:
        claim = session.get_one(models.Claim, claim_id)
        records = session.scalars(
            select(models.AssessmentRecord)
            .where(models.AssessmentRecord.claim_id == claim_id)
            .order_by(models.AssessmentRecord.version)
        ).all()
        events = session.scalars(
            select(models.AuditEvent)
            .where(models.AuditEvent.claim_id == claim_id)
            .order_by(models.AuditEvent.id)
        ).all()
        assert claim.status == "approved"
        assert [r.source for r in records] == ["model", "adjuster", "adjuster"]
        damages = records[-1].body["photos"][0]["damages"]
        assert [(d["damage_type"], d["severity"], d["part"]) for d in damages] == [
            ("scratch", "minor", "front_bumper"),
            ("crack", "moderate", "hood"),
        ]
        x1, y1 = damages[1]["box"]["x1"], damages[1]["box"]["y1"]
        assert 640 * 0.5 < x1 < 640 * 0.6 and 480 * 0.05 < y1 < 480 * 0.15
        assert claim.estimate_total is not None
        assert str(claim.estimate_total) == records[-1].body["estimate"]["total"]
        assert [(e.actor, e.action) for e in events] == [
            (adjuster, "finding.edit"),
            (adjuster, "finding.add"),
            (adjuster, "claim.approved"),
        ]


class TestRepeatsOfADamage:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        from tests.conftest import make_settings

        return make_settings(tmp_path, analyzer="tests.fakes:build_outlined_again_fake_analyzer")

    def test_are_drawn_on_the_photo_only_while_their_fold_is_open(
        self, server: str, adjuster: str
    ) -> None:
        from playwright.sync_api import expect, sync_playwright

        from tests.capture.browser import AXE, accessible

        # given a flagged claim whose photo's dent is also outlined and named again
        claim_id = flagged_claim(server)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            try:
                page.goto(f"{server}/adjuster/login")
                page.get_by_label("Email").fill(adjuster)
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                page.goto(f"{server}/adjuster/claims/{claim_id}")
                dent, *repeats = page.locator("svg.overlay g.damage").all()
                # then the photo shows the dent alone, its repeats folded away, on a page
                # with no serious accessibility violation
                expect(dent).to_be_visible()
                for repeat in repeats:
                    expect(repeat).to_be_hidden()
                expect(page.locator("details.seen-again tr.damage-row").first).to_be_hidden()
                if AXE.exists():
                    accessible(page, "claim page, repeats folded")
                # when the adjuster opens the fold
                page.locator("details.seen-again summary").click()
                # then the repeats are listed and drawn
                expect(page.locator("details.seen-again tr.damage-row")).to_have_count(2)
                for repeat in repeats:
                    expect(repeat).to_be_visible()
                assert len(repeats) == 2
                if AXE.exists():
                    accessible(page, "claim page, repeats shown")
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "adjuster-repeats.png"), full_page=True)
            finally:
                browser.close()
