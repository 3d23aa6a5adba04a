//! Harbor webhooks (`Authorization` shared secret), in both of the formats
//! Harbor sends: its default JSON and CloudEvents.

use scanfleet_registry_events::RegistryKind;

use super::{
    Case, D_AMD64, D_API, D_HARBOR1, D_HARBOR2, D_INDEX, DIST_TOKEN, Expect, HARBOR_AUTH, Headers,
    case, ev, not_push,
};

/// Harbor's default format.
pub(crate) fn default_format() -> Vec<Case> {
    use RegistryKind::Harbor;
    vec![
        case(
            "harbor_default_push.json",
            Harbor,
            Headers::Auth(HARBOR_AUTH),
            Expect::Outcome(
                vec![ev(
                    Harbor,
                    "harbor.example.com",
                    "shop/web",
                    D_HARBOR1,
                    Some("1.4.2"),
                    None,
                    // sha256("PUSH_ARTIFACT\n1732318867\n<digest>")[..32], computed with Python.
                    "harbor-46f3337a2053fd56ebe9a657d4257b32",
                )],
                vec![],
            ),
        ),
        case(
            "harbor_default_untagged.json",
            Harbor,
            Headers::Auth(HARBOR_AUTH),
            Expect::Outcome(
                vec![ev(
                    Harbor,
                    "harbor.example.com",
                    "shop/web",
                    D_HARBOR2,
                    None,
                    None,
                    "harbor-d902d6aa1f373e42bd4c0a81ee0f945e",
                )],
                vec![],
            ),
        ),
        case(
            "harbor_default_pull.json",
            Harbor,
            Headers::Auth(HARBOR_AUTH),
            Expect::Outcome(vec![], vec![("", not_push("PULL_ARTIFACT"))]),
        ),
        case(
            "harbor_default_bad_resource_url.json",
            Harbor,
            Headers::Auth(HARBOR_AUTH),
            Expect::Error(
                422,
                "event_data.resources[1].resource_url: registry host \"harbor example.com\" is not a \
                 valid host name",
            ),
        ),
        case(
            "harbor_default_push.json",
            Harbor,
            Headers::Auth(DIST_TOKEN),
            Expect::Error(401, "authentication failed: Authorization does not match"),
        ),
    ]
}

/// Harbor's CloudEvents format.
pub(crate) fn cloudevents() -> Vec<Case> {
    use RegistryKind::Harbor;
    vec![
        case(
            "harbor_cloudevents_push.json",
            Harbor,
            Headers::Auth(HARBOR_AUTH),
            Expect::Outcome(
                vec![ev(
                    Harbor,
                    "harbor.example.com:8443",
                    "shop/api",
                    D_API,
                    Some("3.1.0"),
                    None,
                    "6e1f6a9e-5c2b-4b7e-a1c9-1f2e3d4c5b6a",
                )],
                vec![],
            ),
        ),
        case(
            "harbor_cloudevents_multi.json",
            Harbor,
            Headers::Auth(HARBOR_AUTH),
            Expect::Outcome(
                vec![
                    ev(
                        Harbor,
                        "harbor.example.com",
                        "shop/api",
                        D_AMD64,
                        None,
                        None,
                        "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d#0",
                    ),
                    ev(
                        Harbor,
                        "harbor.example.com",
                        "shop/api",
                        D_INDEX,
                        Some("3.2.0"),
                        None,
                        "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d#1",
                    ),
                ],
                vec![],
            ),
        ),
        case(
            "harbor_cloudevents_scan_completed.json",
            Harbor,
            Headers::Auth(HARBOR_AUTH),
            Expect::Outcome(vec![], vec![("", not_push("harbor.scan.completed"))]),
        ),
    ]
}
