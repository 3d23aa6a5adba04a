//! The official kubectl (v1.37, installed by scripts/setup) against kubesim.
//! Requires root (kubesim runs containers in namespaces).

mod common;

use std::process::Command;

use base64::Engine;

use common::kubectl::Kubectl;

#[tokio::test]
async fn get_pods_all_namespaces_wide() {
    let sim = common::demo().await;
    let k = Kubectl::new();
    let kc = k.kubeconfig("admin", &sim.admin_kubeconfig());
    let o = k.run(&kc, &["get", "pods", "-A", "-o", "wide"], None).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let mut lines = o.stdout.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAMESPACE",
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    for pod in [
        "web-misconfigured",
        "web-hardened",
        "distroless-app",
        "app-with-scanner",
        "nonroot-worker",
    ] {
        let row = rows
            .iter()
            .find(|r| r[1] == pod)
            .unwrap_or_else(|| panic!("{pod} listed:\n{}", o.stdout));
        assert_eq!((row[0], row[3]), ("apps", "Running"), "{row:?}");
        assert!(row[6].starts_with("10.244."), "{row:?}");
        assert_eq!(row[7], "kubesim-node");
    }
    let two = rows
        .iter()
        .find(|r| r[1] == "app-with-scanner")
        .expect("row");
    assert_eq!(two[2], "2/2");
    sim.shutdown().await;
}

#[tokio::test]
async fn exec_into_a_shell_container() {
    let sim = common::demo().await;
    let k = Kubectl::new();
    let kc = k.kubeconfig("admin", &sim.admin_kubeconfig());
    let o = k
        .run(
            &kc,
            &["exec", "-n", "apps", "web-misconfigured", "--", "id"],
            None,
        )
        .await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "uid=0(root) gid=0(root)\n"),
        "{}",
        o.stderr
    );
    let o = k
        .run(
            &kc,
            &[
                "exec",
                "-n",
                "apps",
                "web-misconfigured",
                "--",
                "cat",
                "/etc/os-release",
            ],
            None,
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout
            .contains("PRETTY_NAME=\"Kubesim Shell 1.0 (misconfigured)\""),
        "{}",
        o.stdout
    );
    let o = k
        .run(
            &kc,
            &["exec", "-n", "apps", "nonroot-worker", "--", "id"],
            None,
        )
        .await;
    assert_eq!(
        o.stdout,
        "uid=1000(app) gid=1000(app) groups=10(wheel),1000(app)\n"
    );
    let o = k
        .run(
            &kc,
            &[
                "exec",
                "-i",
                "-n",
                "apps",
                "web-hardened",
                "--",
                "sh",
                "-c",
                "cat; echo err >&2; exit 3",
            ],
            Some("piped\n"),
        )
        .await;
    assert_eq!(o.code, 3);
    assert_eq!(o.stdout, "piped\n");
    assert!(
        o.stderr.contains("err\n") && o.stderr.contains("command terminated with exit code 3"),
        "{}",
        o.stderr
    );
    let o = k
        .run(
            &kc,
            &["exec", "-n", "apps", "distroless-app", "--", "sh"],
            None,
        )
        .await;
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("executable file not found in $PATH"),
        "{}",
        o.stderr
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn service_account_token_role_binding_and_can_i() {
    let sim = common::demo().await;
    let k = Kubectl::new();
    let kc = k.kubeconfig("admin", &sim.admin_kubeconfig());
    let o = k
        .run(
            &kc,
            &["create", "serviceaccount", "-n", "apps", "limited"],
            None,
        )
        .await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "serviceaccount/limited created\n"),
        "{}",
        o.stderr
    );
    let o = k
        .run(
            &kc,
            &[
                "create",
                "token",
                "-n",
                "apps",
                "limited",
                "--duration",
                "10m",
            ],
            None,
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let token = o.stdout.trim().to_string();
    let payload = token.split('.').nth(1).expect("jwt payload");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("json claims");
    assert_eq!(
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
        600
    );
    assert_eq!(claims["sub"], "system:serviceaccount:apps:limited");
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["name"], "limited");

    let o = k
        .run(
            &kc,
            &[
                "create",
                "role",
                "-n",
                "apps",
                "pod-reader",
                "--verb=get",
                "--resource=pods",
                "--resource-name=web-hardened",
            ],
            None,
        )
        .await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "role.rbac.authorization.k8s.io/pod-reader created\n"),
        "{}",
        o.stderr
    );
    let o = k
        .run(
            &kc,
            &[
                "create",
                "rolebinding",
                "-n",
                "apps",
                "limited-read",
                "--role=pod-reader",
                "--serviceaccount=apps:limited",
            ],
            None,
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);

    let restricted = k.kubeconfig(
        "limited",
        &sim.kubeconfig_for_token("limited", &token, "apps"),
    );
    let yes = k
        .run(
            &restricted,
            &["auth", "can-i", "get", "pods/web-hardened"],
            None,
        )
        .await;
    assert_eq!(
        (yes.code, yes.stdout.as_str()),
        (0, "yes\n"),
        "{}",
        yes.stderr
    );
    let no = k
        .run(
            &restricted,
            &["auth", "can-i", "get", "pods/web-misconfigured"],
            None,
        )
        .await;
    assert_eq!((no.code, no.stdout.as_str()), (1, "no\n"), "{}", no.stderr);
    let no = k
        .run(&restricted, &["auth", "can-i", "create", "pods/exec"], None)
        .await;
    assert_eq!(no.stdout, "no\n");
    let o = k.run(&restricted, &["auth", "can-i", "--list"], None).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let row = o
        .stdout
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_else(|| panic!("{}", o.stdout));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["pods", "[]", "[web-hardened]", "[get]"]
    );
    let o = k
        .run(
            &restricted,
            &["get", "pod", "web-hardened", "-o", "name"],
            None,
        )
        .await;
    assert_eq!(o.stdout, "pod/web-hardened\n", "{}", o.stderr);

    // Denied exec: kubectl prints the upstream Forbidden message.
    let o = k
        .run(&restricted, &["exec", "web-hardened", "--", "id"], None)
        .await;
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("pods \"web-hardened\" is forbidden: User \"system:serviceaccount:apps:limited\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"apps\""),
        "{}",
        o.stderr
    );
    let o = k.run(&restricted, &["get", "pods"], None).await;
    assert!(o.stderr.contains("Error from server (Forbidden): pods is forbidden: User \"system:serviceaccount:apps:limited\" cannot list resource \"pods\" in API group \"\" in the namespace \"apps\""), "{}", o.stderr);
    sim.shutdown().await;
}

#[tokio::test]
async fn debug_target_on_distroless_then_read_the_target_files() {
    let sim = common::demo().await;
    let k = Kubectl::new();
    let kc = k.kubeconfig("admin", &sim.admin_kubeconfig());
    let o = k
        .run(
            &kc,
            &["exec", "-n", "apps", "distroless-app", "--", "ls", "/"],
            None,
        )
        .await;
    assert_ne!(o.code, 0, "distroless has no ls");
    let o = k
        .run(
            &kc,
            &[
                "debug",
                "-n",
                "apps",
                "distroless-app",
                "--image=kubesim.local/scanner:1.0",
                "--target=app",
                "-c",
                "dbg",
                "--",
                "sleep",
                "infinity",
            ],
            None,
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(common::admin(&sim).await, "apps");
    common::eventually(
        "debug container running",
        std::time::Duration::from_secs(20),
        || async {
            let p = pods.get("distroless-app").await.ok()?;
            p.status?
                .ephemeral_container_statuses?
                .into_iter()
                .find(|s| s.name == "dbg")?
                .state?
                .running
                .map(|_| ())
        },
    )
    .await;
    let o = k
        .run(
            &kc,
            &[
                "exec",
                "-n",
                "apps",
                "distroless-app",
                "-c",
                "dbg",
                "--",
                "cat",
                "/proc/1/root/app/config.json",
                "/proc/1/root/etc/os-release",
            ],
            None,
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.starts_with("{\"listen\": \":8080\"}\n"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("PRETTY_NAME=\"Distroless\""),
        "{}",
        o.stdout
    );
    let o = k
        .run(
            &kc,
            &[
                "exec",
                "-n",
                "apps",
                "distroless-app",
                "-c",
                "dbg",
                "--",
                "ps",
                "-o",
                "pid,user,args",
            ],
            None,
        )
        .await;
    let first = o.stdout.lines().nth(1).unwrap_or("");
    assert_eq!(
        first.split_whitespace().collect::<Vec<_>>(),
        ["1", "65532", "/app/sleep", "infinity"],
        "{}",
        o.stdout
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn get_watch_prints_table_rows_for_changes() {
    use std::io::BufRead;
    let sim = common::demo().await;
    let k = Kubectl::new();
    let kc = k.kubeconfig("admin", &sim.admin_kubeconfig());
    let mut child = Command::new(&k.bin)
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["get", "pods", "-n", "apps", "-w", "--request-timeout=20s"])
        .env("HOME", k.home.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    let header = next_line(&mut rx).await;
    assert!(header.starts_with("NAME"), "{header}");
    for _ in 0..5 {
        next_line(&mut rx).await;
    }
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(common::admin(&sim).await, "apps");
    pods.patch(
        "web-hardened",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"metadata": {"labels": {"touched": "yes"}}})),
    )
    .await
    .expect("label");
    let row = next_line(&mut rx).await;
    assert_eq!(
        row.split_whitespace().take(3).collect::<Vec<_>>(),
        ["web-hardened", "1/1", "Running"],
        "{row}"
    );
    let _ = child.kill();
    let _ = child.wait();
    sim.shutdown().await;
}

async fn next_line(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
        .await
        .expect("a line in time")
        .expect("kubectl still running")
}
