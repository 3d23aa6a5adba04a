//! The generated types behave as protobuf: what is encoded decodes the same.

#[test]
fn intent_round_trips_through_protobuf() {
    use prost::Message;
    use scanfleet_contracts::v1::{
        Approach, Priority, ProfileRef, RegistryPushTrigger, ScanIntent, ScanTarget, Trigger,
        profile_ref::Pin, trigger::Source,
    };
    let intent = ScanIntent {
        id: "01JDQ2Z8Y6W5M3N4P7R9S0T1V2".into(),
        target: Some(ScanTarget {
            cluster: "prod".into(),
            namespace: "shop".into(),
            pod: "web-0".into(),
            container: "web".into(),
            image: None,
            registry_image: None,
        }),
        profile: Some(ProfileRef {
            name: "container-baseline".into(),
            pin: Some(Pin::Version("1.0.0".into())),
        }),
        approach: Approach::Auto as i32,
        priority: Priority::High as i32,
        trigger: Some(Trigger {
            source: Some(Source::RegistryPush(RegistryPushTrigger {
                registry: "ghcr.io".into(),
                repository: "shop/web".into(),
                digest: format!("sha256:{}", "ab".repeat(32)),
                tag: "1.2".into(),
            })),
        }),
        ..Default::default()
    };
    let bytes = intent.encode_to_vec();
    assert_eq!(ScanIntent::decode(bytes.as_slice()).unwrap(), intent);
}
