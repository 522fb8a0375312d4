"""What the workspace shows: confirmations, every status, photo names, fresh reasons,
readable overlays (SQLite, local blobs, fake analyzer, jobs run in-process)."""

from __future__ import annotations

import html
import re
from itertools import pairwise
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cdat.findings import Box, DamageInstance, PartInstance, PhotoAnalysis
from cdat.settings import Settings
from cdat.taxonomy import CarPart, DamageType, Severity
from mobile_api.runtime import Runtime
from mobile_api.web.present import damage_label, font_size, label_positions
from mobile_api.web.queries import claim_view
from tests.conftest import make_settings
from tests.web.conftest import Flagged, csrf_of, open_flagged_claim, sign_in


def status_of(web: TestClient, flagged: Flagged) -> str:
    status: str = web.get(f"/v1/claims/{flagged.claim_id}", headers=flagged.headers).json()[
        "status"
    ]
    return status


def test_approving_a_zero_estimate_needs_saying_so(
    web: TestClient, adjuster: str, flagged: Flagged
) -> None:
    sign_in(web)
    base = f"/adjuster/claims/{flagged.claim_id}"
    csrf = csrf_of(web.get(base).text)
    # given a claim whose only finding the adjuster deleted: the estimate is 0.00
    photo = flagged.photo_ids[0]
    web.post(f"{base}/damages/{photo}/0/delete", data={"csrf_token": csrf})
    page = web.get(base).text
    assert "approve with nothing to pay" in page
    # when they press Approve without confirming
    plain = web.post(f"{base}/approve", data={"csrf_token": csrf}, follow_redirects=False)
    # then the page says why, and the claim is not approved
    assert plain.status_code == 422
    assert "confirm that the claim is approved with nothing to pay" in plain.text
    assert status_of(web, flagged) == "needs_review"
    # and with the confirmation it is
    confirmed = web.post(
        f"{base}/approve",
        data={"csrf_token": csrf, "nothing_to_pay": "yes"},
        follow_redirects=False,
    )
    assert confirmed.status_code == 303 and status_of(web, flagged) == "approved"


def test_claims_of_every_status_are_reachable_from_the_queue(
    web: TestClient, runtime: Runtime, adjuster: str, flagged: Flagged
) -> None:
    sign_in(web)
    base = f"/adjuster/claims/{flagged.claim_id}"
    csrf = csrf_of(web.get(base).text)
    web.post(f"{base}/reject", data={"csrf_token": csrf, "reason": "Not covered"})
    waiting = open_flagged_claim(web, (30, 60, 90))
    queue = web.get("/adjuster/").text
    assert 'href="/adjuster/?status=rejected"' in queue
    assert waiting.claim_id in queue and flagged.claim_id not in queue
    rejected = web.get("/adjuster/", params={"status": "rejected"}).text
    assert flagged.claim_id in rejected and waiting.claim_id not in rejected
    assert web.get("/adjuster/", params={"status": "nonsense"}).status_code == 422


def test_reasons_name_photos_as_the_page_does_and_follow_corrections(
    web: TestClient, adjuster: str
) -> None:
    flagged = open_flagged_claim(web, (200, 200, 200), (20, 20, 20))
    sign_in(web)
    base = f"/adjuster/claims/{flagged.claim_id}"
    page = web.get(base).text
    # the reasons say "Photo 2", as the photo's heading does, never its id
    assert "Photo 2 has no capture time" in page
    for photo_id in flagged.photo_ids:
        assert f"photo {photo_id}" not in page
    # when the adjuster corrects a finding, the header's reasons follow the new version
    csrf = csrf_of(page)
    before = page.split('class="reason-line">')[1].split("</p>")[0]
    photo = flagged.photo_ids[0]
    edit = {"csrf_token": csrf, "damage_type": "dent", "severity": "minor", "part": ""}
    web.post(f"{base}/damages/{photo}/0/edit", data=edit)
    after = web.get(base).text.split('class="reason-line">')[1].split("</p>")[0]
    assert after != before and "unpriced damage" in after


def test_the_header_names_each_kind_of_reason_once_and_the_side_says_why(
    web: TestClient, adjuster: str
) -> None:
    # given a claim flagged for fraud signals (two photos without a capture time) and, once
    # corrected, for damage it cannot price
    flagged = open_flagged_claim(web, (200, 200, 200), (20, 20, 20))
    sign_in(web)
    base = f"/adjuster/claims/{flagged.claim_id}"
    edit = {"csrf_token": csrf_of(web.get(base).text), "damage_type": "dent", "severity": "minor"}
    web.post(f"{base}/damages/{flagged.photo_ids[0]}/0/edit", data={**edit, "part": ""})
    page = web.get(base).text
    # then the header names each kind once, counted as the side panel counts them, and
    # links to the reasons in full
    why = page.split('id="why">')[1].split("</section>")[0]
    signals = re.search(r"<b>fraud signal</b> <small[^>]*>\(weight \d\)</small>, (\d) times", why)
    assert signals is not None
    header = html.unescape(page.split('class="reason-line">')[1].split("</p>")[0])
    kinds = header.removeprefix("To review: ").removesuffix(' (<a href="#why">why each</a>)')
    assert sorted(kinds.split(", ")) == [f"fraud signal \u00d7{signals[1]}", "unpriced damage"]
    # and the side panel, which the link opens, gives each reason's message
    assert "Photo 1 has no capture time" in why and "Photo 2 has no capture time" in why
    assert "cannot be priced" in why


def test_overlay_labels_of_boxes_sharing_a_corner_do_not_overlap() -> None:
    box = Box(10.0, 40.0, 200.0, 120.0)
    photo = PhotoAnalysis(
        "p1",
        640,
        480,
        parts=(PartInstance(CarPart.FRONT_BUMPER, 0.9, box),),
        damages=(
            DamageInstance(DamageType.DENT, Severity.SEVERE, 0.9, box),
            DamageInstance(DamageType.SCRATCH, Severity.MINOR, 0.9, box),
        ),
    )
    labels = label_positions(photo)
    spots = labels["parts"] + labels["damages"]
    ys = sorted(y for _, y in spots)
    assert all(b - a >= 20 for a, b in pairwise(ys))


def test_a_photo_removed_since_the_assessment_is_named_so_not_by_its_id(
    web: TestClient, adjuster: str
) -> None:
    # given a flagged claim whose second photo the policyholder then removed
    flagged = open_flagged_claim(web, (200, 200, 200), (20, 20, 20))
    removed = flagged.photo_ids[1]
    url = f"/v1/claims/{flagged.claim_id}/photos/{removed}"
    assert web.delete(url, headers=flagged.headers).status_code == 204
    # when the adjuster opens it
    sign_in(web)
    page = web.get(f"/adjuster/claims/{flagged.claim_id}").text
    # then the reasons about that photo call it a removed photo
    assert "a removed photo has no capture time" in page
    assert f"photo {removed}" not in page


def test_overlay_labels_are_drawn_at_the_size_they_were_placed_for(
    web: TestClient, adjuster: str, flagged: Flagged
) -> None:
    # given a claim page with overlays
    sign_in(web)
    page = web.get(f"/adjuster/claims/{flagged.claim_id}").text
    # then every label is drawn at the font size `label_positions` placed it for
    drawn = set(re.findall(r'font-size="([0-9.]+)"', page))
    widths = set(re.findall(r'<div class="stage" data-width="([0-9]+)"', page))
    sizes = {str(font_size(PhotoAnalysis("p", int(width), 1))) for width in widths}
    assert drawn and drawn == sizes


def test_overlay_labels_say_what_they_were_placed_for(
    web: TestClient, runtime: Runtime, adjuster: str, flagged: Flagged
) -> None:
    # given a claim page with overlays
    sign_in(web)
    page = web.get(f"/adjuster/claims/{flagged.claim_id}").text
    # then each damage label is the text `label_positions` placed (`present.damage_label`)
    drawn = re.findall(r'class="layer-severity dmg-label"[^>]*>([^<]+)</text>', page)
    assessment = claim_view(runtime, flagged.claim_id).assessment
    assert assessment is not None
    placed = [
        damage_label(number, damage)
        for photo in assessment.photos
        for number, damage in enumerate(photo.damages, start=1)
    ]
    assert drawn and drawn == placed


def test_the_queue_shows_each_reason_once_with_how_many_times_it_was_given(
    web: TestClient, adjuster: str
) -> None:
    # given a claim of three photos, none with a capture time: one fraud signal per photo
    three = open_flagged_claim(web, (30, 60, 90), (90, 60, 30), (60, 90, 30))
    sign_in(web)
    # when the adjuster reads the queue
    queue = web.get("/adjuster/").text
    row = queue[queue.index(three.claim_id) :]
    row = row[: row.index("</tr>")]
    # then the code is one chip that says how often it was given, each message in its title
    chips = re.findall(r'<span class="chip small" title="([^"]*)">([^<]*)</span>', row)
    fraud = [(title, text) for title, text in chips if text.startswith("fraud signal")]
    assert len(fraud) == 1, chips
    title, text = fraud[0]
    given = html.unescape(title).split("\n")
    assert sum("has no capture time" in line for line in given) == 3
    assert f"fraud signal \u00d7{len(given)} · " in text
    # and the photos are named as the claim's page names them, never by their ids
    assert "Photo 3 has no capture time" in title
    assert not any(photo_id in row for photo_id in three.photo_ids)


def test_the_claim_page_lists_one_codes_reasons_under_it_once(
    web: TestClient, adjuster: str
) -> None:
    # given a claim of three photos, none with a capture time
    three = open_flagged_claim(web, (30, 60, 90), (90, 60, 30), (60, 90, 30))
    sign_in(web)
    # when the adjuster opens it
    page = web.get(f"/adjuster/claims/{three.claim_id}").text
    reasons = page.split('<ul class="reasons-list">')[1].split("</section>")[0]
    # then "fraud signal" heads its reasons once, and each photo's own line sits under it
    assert reasons.count("<b>fraud signal</b>") == 1
    assert re.search(r"<b>fraud signal</b> <small[^>]*>\(weight \d\)</small>, \d+ times:", reasons)
    for name in ("Photo 1", "Photo 2", "Photo 3"):
        assert f"<li>{name} has no capture time" in reasons


class TestReasonsGivenPerFinding:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        analyzer = "tests.fakes:build_close_ups_of_two_parts_fake_analyzer"
        return make_settings(tmp_path, analyzer=analyzer)

    def test_say_their_shared_explanation_once_and_name_each_finding_under_it(
        self, web: TestClient, adjuster: str
    ) -> None:
        # given a claim of two close-ups, a dent on the hood and one on the front bumper,
        # each severity read close up: one severity_to_confirm reason per finding
        claim = open_flagged_claim(web, (30, 60, 90), (230, 230, 230))
        sign_in(web)
        # when the adjuster opens it
        page = web.get(f"/adjuster/claims/{claim.claim_id}").text
        reasons = page.split('<ul class="reasons-list">')[1].split("</section>")[0]
        # then the explanation is given once, after the code, and each finding is named
        # under it by what it is and where, without the explanation again
        explanation = "seen only close up, where the severity read under-calls heavy damage"
        assert reasons.count(explanation) == 1
        assert re.search(
            r"<b>severity to confirm</b> <small[^>]*>\(weight \d\)</small>, 2 times: seen only",
            reasons,
        )
        assert "<li>minor dent on hood</li>" in reasons
        assert "<li>severe dent on front_bumper</li>" in reasons


class TestADamageOutlinedAgain:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return make_settings(tmp_path, analyzer="tests.fakes:build_outlined_again_fake_analyzer")

    def test_is_listed_apart_under_a_fold_saying_whose_repeat_it_is(
        self, web: TestClient, adjuster: str, flagged: Flagged
    ) -> None:
        # given a claim whose photo's dent is outlined twice, the second inside the first,
        # and named again as a less sure scratch inside it
        sign_in(web)
        page = web.get(f"/adjuster/claims/{flagged.claim_id}").text
        # then the photo's table lists the dent alone, and a fold the two repeats, each
        # saying which damage it repeats and how
        main, fold = page.split('<details class="seen-again">')
        row = r'<tr class="damage-row([^"]*)" data-index="(\d)">(.*?)</tr>'
        assert [(c, i) for c, i, _ in re.findall(row, main, re.S)] == [("", "0")]
        repeats = re.findall(row, fold, re.S)
        assert [(c, i) for c, i, _ in repeats] == [(" seen-again", "1"), (" seen-again", "2")]
        assert "outline of #1" in repeats[0][2] and "#1 named again" in repeats[1][2]
        assert "2 more outlines of the damages above" in fold
        # and only the dent is labelled on the photo; the repeats are drawn as such
        drawn = re.findall(r'class="layer-severity dmg-label"[^>]*>([^<]+)</text>', page)
        assert [html.unescape(text) for text in drawn] == ["#1 severe dent"]
        assert '<g class="damage seen-again" data-index="1">' in page
        assert '<g class="damage seen-again" data-index="2">' in page

    def test_its_damage_deleted_takes_its_repeats_and_the_audit_names_them(
        self, web: TestClient, runtime: Runtime, adjuster: str, flagged: Flagged
    ) -> None:
        from tests.web.test_workspace import audit_log, post, versions

        # given a claim whose photo's dent is also outlined and named again
        sign_in(web)
        base, photo = f"/adjuster/claims/{flagged.claim_id}", flagged.photo_ids[0]
        page = web.get(base).text
        csrf = csrf_of(page)
        # then the dent's Delete says its repeats go with it, and theirs do not
        assert page.count(">Delete with 2 repeats</button>") == 1
        assert page.count(">Delete</button>") == 2
        # when the adjuster sends a delete that does not say what to do with the repeats
        bad = post(web, f"{base}/damages/{photo}/0/delete", csrf_token=csrf, repeats="all")
        # then it is an inline error and nothing is lost
        refused = "repeats takes 'delete' (the damage's repeats go with it) or nothing"
        assert bad.status_code == 422 and refused in html.unescape(bad.text)
        # however long the value sent, the page does not echo it
        long = post(web, f"{base}/damages/{photo}/0/delete", csrf_token=csrf, repeats="x" * 5000)
        assert long.status_code == 422 and "x" * 100 not in long.text
        assert len(versions(runtime, flagged.claim_id)) == 1
        # when the adjuster deletes the dent with its repeats
        done = post(web, f"{base}/damages/{photo}/0/delete", csrf_token=csrf, repeats="delete")
        # then the photo has no damage left, and the audit names all three
        assert done.status_code == 303
        assert versions(runtime, flagged.claim_id)[-1].body["photos"][0]["damages"] == []
        (event,) = audit_log(runtime, flagged.claim_id)
        assert event.action == "finding.delete" and event.before is not None
        deleted = event.before["value"]
        assert deleted["damage_type"] == "dent"
        assert [r["damage_type"] for r in deleted["repeats"]] == ["dent", "scratch"]

    def test_a_repeat_deleted_alone_leaves_its_damage(
        self, web: TestClient, runtime: Runtime, adjuster: str, flagged: Flagged
    ) -> None:
        from tests.web.test_workspace import post, versions

        # given a claim whose photo's dent is also outlined and named again
        sign_in(web)
        base, photo = f"/adjuster/claims/{flagged.claim_id}", flagged.photo_ids[0]
        csrf = csrf_of(web.get(base).text)
        # when the adjuster deletes the scratch that names the dent again
        post(web, f"{base}/damages/{photo}/2/delete", csrf_token=csrf)
        # then the dent and its outline stay
        damages = versions(runtime, flagged.claim_id)[-1].body["photos"][0]["damages"]
        assert [(d["damage_type"], d["confidence"]) for d in damages] == [
            ("dent", 0.9),
            ("dent", 0.5),
        ]


class TestADamageScoredLowThatIsLikelyReal:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return make_settings(tmp_path, analyzer="tests.fakes:build_calibrated_fake_analyzer")

    def test_shows_its_chance_and_is_not_flagged_as_unsure(
        self, web: TestClient, adjuster: str, flagged: Flagged
    ) -> None:
        # given a claim whose dent the detector scored 0.05 and its curves read as 0.85
        sign_in(web)
        # when the adjuster opens it
        page = web.get(f"/adjuster/claims/{flagged.claim_id}").text
        # then the dent's row shows the chance, not the score
        row = page.split('<table class="damages"')[1].split("</table>")[0]
        assert ">85%" in row and ">5%" not in row
        # and no low-confidence reason asks to look at it (the claim's missing capture
        # times still do)
        assert "low confidence" not in page.lower() and "low_confidence" not in page
        assert "capture time" in page.lower()
