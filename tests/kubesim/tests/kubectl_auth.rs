//! The official kubectl (v1.37) asking kubesim who and what: `auth can-i`
//! on the virtual `scans.scanfleet.dev` (resolved through discovery, granted
//! by a Role kubectl itself creates), `auth whoami`, and TokenReview and
//! SubjectAccessReview objects created from stdin.
//! Requires root (kubesim runs containers in namespaces).

mod common;

use common::kubectl::{Kubectl, Out};

fn yes_no(o: &Out, code: i32, answer: &str) {
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (code, answer),
        "stderr: {}",
        o.stderr
    );
    // kubectl warns when discovery does not know the resource; it must.
    assert!(!o.stderr.contains("Warning"), "{}", o.stderr);
}

#[tokio::test]
async fn can_i_create_scans_follows_the_role_and_whoami_names_the_account() {
    let sim = common::demo().await;
    let k = Kubectl::new();
    let admin = k.kubeconfig("admin", &sim.admin_kubeconfig());
    let o = k
        .run(
            &admin,
            &["create", "serviceaccount", "-n", "apps", "submitter"],
            None,
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = k
        .run(
            &admin,
            &["create", "token", "-n", "apps", "submitter"],
            None,
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let sa = k.kubeconfig(
        "submitter",
        &sim.kubeconfig_for_token("submitter", o.stdout.trim(), "apps"),
    );
    let can_i = [
        "auth",
        "can-i",
        "create",
        "scans.scanfleet.dev",
        "-n",
        "apps",
    ];
    yes_no(&k.run(&sa, &can_i, None).await, 1, "no\n");

    let o = k
        .run(
            &admin,
            &[
                "create",
                "role",
                "-n",
                "apps",
                "scan-submitter",
                "--verb=create",
                "--resource=scans.scanfleet.dev",
                "-o",
                "jsonpath={.rules[0].apiGroups[0]}/{.rules[0].resources[0]}",
            ],
            None,
        )
        .await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "scanfleet.dev/scans"),
        "{}",
        o.stderr
    );
    let o = k
        .run(
            &admin,
            &[
                "create",
                "rolebinding",
                "-n",
                "apps",
                "submit-scans",
                "--role=scan-submitter",
                "--serviceaccount=apps:submitter",
            ],
            None,
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    yes_no(&k.run(&sa, &can_i, None).await, 0, "yes\n");
    let elsewhere = [
        "auth",
        "can-i",
        "create",
        "scans.scanfleet.dev",
        "-n",
        "kube-system",
    ];
    yes_no(&k.run(&sa, &elsewhere, None).await, 1, "no\n");
    let read = [
        "auth",
        "can-i",
        "list",
        "results.scanfleet.dev",
        "-n",
        "apps",
    ];
    yes_no(&k.run(&sa, &read, None).await, 1, "no\n");

    let o = k
        .run(
            &sa,
            &[
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
            ],
            None,
        )
        .await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (
            0,
            r#"system:serviceaccount:apps:submitter ["system:serviceaccounts","system:serviceaccounts:apps","system:authenticated"]"#
        ),
        "{}",
        o.stderr
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn token_and_subject_access_reviews_from_stdin() {
    let sim = common::demo().await;
    let k = Kubectl::new();
    let admin = k.kubeconfig("admin", &sim.admin_kubeconfig());
    let o = k
        .run(
            &admin,
            &["create", "serviceaccount", "-n", "apps", "submitter"],
            None,
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = k
        .run(
            &admin,
            &[
                "create",
                "token",
                "-n",
                "apps",
                "submitter",
                "--audience",
                "scanfleet",
            ],
            None,
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let token = o.stdout.trim().to_string();
    // kubesim serves no OpenAPI documents, so client-side validation is off.
    let create = ["create", "--validate=false", "-f", "-", "-o"];
    let review = |audiences: &str| {
        format!(
            r#"{{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{{"token":"{token}","audiences":{audiences}}}}}"#
        )
    };
    let jsonpath = "jsonpath={.status.authenticated} {.status.user.username} {.status.audiences}";
    let out = [create.as_slice(), &[jsonpath]].concat();
    let o = k.run(&admin, &out, Some(&review(r#"["scanfleet"]"#))).await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (
            0,
            r#"true system:serviceaccount:apps:submitter ["scanfleet"]"#
        ),
        "{}",
        o.stderr
    );
    let error = [create.as_slice(), &["jsonpath={.status.error}"]].concat();
    let o = k.run(&admin, &error, Some(&review(r#"["vault"]"#))).await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (
            0,
            r#"[invalid bearer token, token audiences ["scanfleet"] is invalid for the target audiences ["vault"]]"#
        ),
        "{}",
        o.stderr
    );
    let sar = r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"system:serviceaccount:apps:submitter","resourceAttributes":{"namespace":"apps","verb":"create","group":"scanfleet.dev","resource":"scans"}}}"#;
    let allowed = [create.as_slice(), &["jsonpath={.status.allowed}"]].concat();
    let o = k.run(&admin, &allowed, Some(sar)).await;
    assert_eq!((o.code, o.stdout.as_str()), (0, "false"), "{}", o.stderr);

    // A scanfleet-audience token is no API credential (401), and an API
    // token without `create tokenreviews` gets upstream's 403.
    let refused = ["create", "--validate=false", "-f", "-"];
    let scanfleet_only = k.kubeconfig(
        "scanfleet-only",
        &sim.kubeconfig_for_token("submitter", &token, "apps"),
    );
    let o = k
        .run(&scanfleet_only, &refused, Some(&review(r#"["scanfleet"]"#)))
        .await;
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("Unauthorized"), "{}", o.stderr);
    let o = k
        .run(
            &admin,
            &["create", "token", "-n", "apps", "submitter"],
            None,
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let api = k.kubeconfig(
        "submitter",
        &sim.kubeconfig_for_token("submitter", o.stdout.trim(), "apps"),
    );
    let o = k
        .run(&api, &refused, Some(&review(r#"["scanfleet"]"#)))
        .await;
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains(r#"Error from server (Forbidden): error when creating "STDIN": tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:apps:submitter" cannot create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope"#),
        "{}",
        o.stderr
    );
    sim.shutdown().await;
}
