"""Every English string of the capture page, in one place so a translation can be added.

Templates call `t("key")`; the quick check's feedback and the page's scripts read the same
table (the scripts get the few they need through `data-` attributes). A translation is a
second table with the same keys, chosen per request.
"""

from __future__ import annotations

EN: dict[str, str] = {
    "app_name": "Car damage claim",
    "skip": "Skip to the main content",
    "offline": "You are offline. The page still works; photos upload when you are back online.",
    # the start page
    "start_title": "Start a car damage claim",
    "start_intro": (
        "Tell us about the car and the damage, then take a few photos with your phone. "
        "It takes about five minutes."
    ),
    "policy_number": "Policy number",
    "policy_number_hint": "On your insurance certificate, for example POL-12345.",
    "loss_date": "Date of the damage",
    "description": "What happened (optional)",
    "vehicle": "The car",
    "make": "Make",
    "model": "Model",
    "year": "Year",
    "body_type": "Body type",
    "contact": "How we reach you",
    "name": "Your name",
    "phone": "Phone",
    "email": "E-mail",
    "contact_hint": "A phone number or an e-mail address, or both.",
    "contact_needed": "Give a phone number or an e-mail address, so we can reach you.",
    "start_submit": "Start the claim",
    "form_errors": "Please correct the fields marked below.",
    # the one-time link
    "link_title": "Open your claim",
    "link_intro": "Your insurer sent you this link to take photos of the damage to your car.",
    "link_continue": "Open my claim",
    "link_note": "The link works once, on this phone only.",
    "link_incomplete": "This link is incomplete. Open it again from the message you were sent.",
    "link_needs_script": "Opening a link needs JavaScript: please turn it on for this page.",
    "link_refused": "This link has expired or was already used on another device.",
    "link_refused_hint": "Ask your insurer for a new link.",
    # the claim page
    "claim_title": "Photos of your car",
    "claim_number": "Claim",
    "shots_title": "Photos to take",
    "steps": "Take each photo below. Each one is checked as soon as it is uploaded.",
    "overview": "The whole car",
    "closeups": "Close-ups of the damage",
    "requested": "Photos the adjuster asked for",
    "take_photo": "Take photo",
    "upload": "Upload",
    "front": "FRONT",
    "retake": "Retake",
    "remove": "Remove",
    "uploading": "Uploading…",
    "retrying": "The connection dropped; trying again…",
    "upload_failed": "The upload failed. Choose the photo again to retry.",
    "checking": "Checking the photo…",
    "check_ok": "Looks good.",
    "check_failed": "The photo could not be checked now; an adjuster will look at it.",
    "upload_progress": "Upload progress",
    "not_taken": "Not taken yet",
    "submit": "Send the photos",
    "submit_again": "Send the new photos",
    "submit_hint": "Send when the overview photos and each damage close-up are taken.",
    "photo_of": "Photo: {shot}",
    # the quick check's plain words (codes from inference.quality and cdat.fraud)
    "issue_blurry": "The photo is blurred. Hold the phone still, tap the car to focus, retake.",
    "issue_underexposed": "The photo is too dark. Take it in daylight or a well-lit place.",
    "issue_overexposed": "The photo is too bright. Avoid direct sun and flash; change angle.",
    "issue_too_small": "The photo is too small. Send the photo straight from the camera.",
    "issue_compressed": (
        "The photo was compressed heavily, which hides small damage. Send the original "
        "from the camera, not a copy from a chat app or website."
    ),
    "issue_unreadable": "The photo could not be read. Take it again with the camera.",
    "issue_no_vehicle": "No car can be seen. Photograph the car from 1-3 metres away.",
    "issue_not_whole_car": (
        "This looks like a close-up. For this photo, step back 2-3 m so the whole corner "
        "of the car is in the frame."
    ),
    "issue_not_a_closeup": (
        "This shows the whole car. Go to about 1 m from the damage so it fills the photo."
    ),
    "issue_duplicate_photo": "This is the same photo as “{other}”. Take a different one.",
    "issue_captured_before_loss": (
        "This photo was taken on {taken}, before the date of the damage. "
        "Please take a new photo of the car now."
    ),
    # status after submit
    "status_title": "Your claim",
    "status_now": "Where your claim is",
    "status_live": "This page updates by itself.",
    "estimate": "Estimate",
    "estimate_total": "Total",
    "estimate_range": "Likely between {low} and {high}",
    "findings": "What we found",
    "finding_to_confirm": "Damage on the {part}: an adjuster will confirm what it is",
    "finding_severity_to_confirm": "{damage}{on}: an adjuster will confirm how severe",
    "reasons": "Why",
    "decided_approved": "Your claim is approved.",
    "decided_rejected": "Your claim was not approved.",
    "retake_asked": "The adjuster asked for more photos:",
    "take_requested": "Take the photos",
    "photos_sent": "Photos on your claim: {count}",
    # errors
    "error_title": "Something went wrong",
    "sign_out": "Sign out",
    "sign_out_hint": "On a shared or borrowed phone, sign out when you are done.",
    "signed_out": "You are signed out. Open your claim again from the link you were sent.",
    "not_signed_in": "Open your claim from the link you were sent, or start a new claim.",
    "start_new": "Start a new claim",
    "back": "Back to your claim",
}

SHOT_NAMES: dict[str, tuple[str, str]] = {
    # shot: (name, hint)
    "front_left": ("Front and left side", "Stand at the front-left corner, 2-3 m away."),
    "front_right": ("Front and right side", "Stand at the front-right corner, 2-3 m away."),
    "rear_left": ("Rear and left side", "Stand at the rear-left corner, 2-3 m away."),
    "rear_right": ("Rear and right side", "Stand at the rear-right corner, 2-3 m away."),
    "damage_1": ("Damage close-up", "About 1 m from the damage, the whole panel in the frame."),
    "damage_2": ("Another damage close-up", "Each damaged part gets its own close-up."),
    "extra": ("Any other photo", "Anything else that shows the damage."),
    "requested": ("Photo the adjuster asked for", "Follow the adjuster's note above."),
}


def t(key: str, **values: object) -> str:
    """The English text for `key`, with `{name}` placeholders filled in."""
    text = EN[key]
    return text.format(**values) if values else text
