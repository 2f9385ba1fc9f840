//! Tables from distribution/reference's reference_test.go and normalize_test.go.

use super::*;

const FF: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

struct Case {
    input: String,
    err: Option<ReferenceError>,
    repository: &'static str,
    domain: &'static str,
    tag: &'static str,
    digest: &'static str,
}

fn ok(input: &str, repository: &'static str, domain: &'static str, tag: &'static str) -> Case {
    Case {
        input: input.to_string(),
        err: None,
        repository,
        domain,
        tag,
        digest: "",
    }
}

fn okd(input: &str, repository: &'static str, domain: &'static str, tag: &'static str) -> Case {
    Case {
        digest: FF,
        ..ok(input, repository, domain, tag)
    }
}

fn bad(input: &str, err: ReferenceError) -> Case {
    Case {
        err: Some(err),
        ..ok(input, "", "", "")
    }
}

#[test]
fn reference_parse_upstream_table() {
    use ReferenceError::*;
    let long_a = "a".repeat(255);
    let cases = vec![
        ok("test_com", "test_com", "", ""),
        ok("test.com:tag", "test.com", "", "tag"),
        ok("test.com:5000", "test.com", "", "5000"),
        ok("test.com/repo:tag", "test.com/repo", "test.com", "tag"),
        ok("test:5000/repo", "test:5000/repo", "test:5000", ""),
        ok("test:5000/repo:tag", "test:5000/repo", "test:5000", "tag"),
        okd(
            &format!("test:5000/repo@{FF}"),
            "test:5000/repo",
            "test:5000",
            "",
        ),
        okd(
            &format!("test:5000/repo:tag@{FF}"),
            "test:5000/repo",
            "test:5000",
            "tag",
        ),
        bad("", NameEmpty),
        bad(":justtag", InvalidFormat),
        bad(&format!("@{FF}"), InvalidFormat),
        bad(
            "repo@sha256:ffffffffffffffffffffffffffffffffff",
            Digest(DigestError::InvalidLength),
        ),
        bad(
            "validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            Digest(DigestError::Unsupported),
        ),
        bad("Uppercase:tag", NameContainsUppercase),
        bad("test:5000/Uppercase/lowercase:tag", NameContainsUppercase),
        ok("lowercase:Uppercase", "lowercase", "", "Uppercase"),
        bad(&format!("domain/{}:tag", "a".repeat(256)), NameTooLong),
        bad("aa/asdf$$^/aa", InvalidFormat),
        ok(
            "sub-dom1.foo.com/bar/baz/quux",
            "sub-dom1.foo.com/bar/baz/quux",
            "sub-dom1.foo.com",
            "",
        ),
        ok(
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
            "sub-dom1.foo.com/bar/baz/quux",
            "sub-dom1.foo.com",
            "some-long-tag",
        ),
        ok(
            "b.gcr.io/test.example.com/my-app:test.example.com",
            "b.gcr.io/test.example.com/my-app",
            "b.gcr.io",
            "test.example.com",
        ),
        ok(
            "xn--n3h.com/myimage:xn--n3h.com",
            "xn--n3h.com/myimage",
            "xn--n3h.com",
            "xn--n3h.com",
        ),
        okd(
            &format!("xn--7o8h.com/myimage:xn--7o8h.com@{FF}"),
            "xn--7o8h.com/myimage",
            "xn--7o8h.com",
            "xn--7o8h.com",
        ),
        ok("foo_bar.com:8080", "foo_bar.com", "", "8080"),
        ok("foo/foo_bar.com:8080", "foo/foo_bar.com", "foo", "8080"),
        ok("192.168.1.1", "192.168.1.1", "", ""),
        ok("192.168.1.1:tag", "192.168.1.1", "", "tag"),
        ok("192.168.1.1:5000", "192.168.1.1", "", "5000"),
        ok("192.168.1.1/repo", "192.168.1.1/repo", "192.168.1.1", ""),
        ok(
            "192.168.1.1:5000/repo",
            "192.168.1.1:5000/repo",
            "192.168.1.1:5000",
            "",
        ),
        ok(
            "192.168.1.1:5000/repo:5050",
            "192.168.1.1:5000/repo",
            "192.168.1.1:5000",
            "5050",
        ),
        bad("[2001:db8::1]", InvalidFormat),
        bad("[2001:db8::1]:5000", InvalidFormat),
        bad("[2001:db8::1]:tag", InvalidFormat),
        ok(
            "[2001:db8::1]/repo",
            "[2001:db8::1]/repo",
            "[2001:db8::1]",
            "",
        ),
        ok(
            "[2001:db8:1:2:3:4:5:6]/repo:tag",
            "[2001:db8:1:2:3:4:5:6]/repo",
            "[2001:db8:1:2:3:4:5:6]",
            "tag",
        ),
        ok(
            "[2001:db8::1]:5000/repo",
            "[2001:db8::1]:5000/repo",
            "[2001:db8::1]:5000",
            "",
        ),
        ok(
            "[2001:db8::1]:5000/repo:tag",
            "[2001:db8::1]:5000/repo",
            "[2001:db8::1]:5000",
            "tag",
        ),
        okd(
            &format!("[2001:db8::1]:5000/repo@{FF}"),
            "[2001:db8::1]:5000/repo",
            "[2001:db8::1]:5000",
            "",
        ),
        okd(
            &format!("[2001:db8::1]:5000/repo:tag@{FF}"),
            "[2001:db8::1]:5000/repo",
            "[2001:db8::1]:5000",
            "tag",
        ),
        ok(
            "[2001:db8::]:5000/repo",
            "[2001:db8::]:5000/repo",
            "[2001:db8::]:5000",
            "",
        ),
        ok("[::1]:5000/repo", "[::1]:5000/repo", "[::1]:5000", ""),
        bad("[fe80::1%eth0]:5000/repo", InvalidFormat),
        bad("[fe80::1%@invalidzone]:5000/repo", InvalidFormat),
    ];
    let mut all = cases;
    // Built from strings (they would not fit the table's &'static fields otherwise).
    let leaked_repo: &'static str = Box::leak(format!("example.com/{long_a}").into_boxed_str());
    all.push(ok(
        &format!("example.com/{long_a}:tag"),
        leaked_repo,
        "example.com",
        "tag",
    ));
    let many: &'static str = Box::leak(format!("{}a", "a/".repeat(127)).into_boxed_str());
    all.push(ok(
        &format!("{many}:tag-puts-this-over-max"),
        many,
        "a",
        "tag-puts-this-over-max",
    ));

    for c in all {
        let got = Reference::parse(&c.input);
        match (&c.err, got) {
            (Some(want), Err(e)) => assert_eq!(&e, want, "{}", c.input),
            (Some(want), Ok(r)) => panic!("{}: parsed as {r}, want error {want}", c.input),
            (None, Err(e)) => panic!("{}: unexpected error {e}", c.input),
            (None, Ok(r)) => {
                assert_eq!(r.to_string(), c.input);
                assert_eq!(r.name(), c.repository, "{}", c.input);
                assert_eq!(r.domain(), c.domain, "{}", c.input);
                assert_eq!(r.tag().unwrap_or(""), c.tag, "{}", c.input);
                assert_eq!(
                    r.digest().map(|d| d.to_string()).unwrap_or_default(),
                    c.digest,
                    "{}",
                    c.input
                );
            }
        }
    }
}

/// Upstream expects sha512 to be unsupported only because its test binary does not link
/// crypto/sha512; the kubelet and containerd do, so here it parses.
#[test]
fn sha512_digest_is_supported_as_in_the_kubelet() {
    let r = Reference::parse(&format!("validname@sha512:{}", "f".repeat(128))).unwrap();
    assert_eq!(
        r.digest().unwrap().algorithm(),
        crate::digest::Algorithm::Sha512
    );
}

#[test]
fn validate_reference_name_upstream() {
    let valid = [
        "docker/docker",
        "library/debian",
        "debian",
        "localhost/library/debian",
        "localhost/debian",
        "LOCALDOMAIN/library/debian",
        "LOCALDOMAIN/debian",
        "docker.io/docker/docker",
        "docker.io/library/debian",
        "docker.io/debian",
        "index.docker.io/docker/docker",
        "index.docker.io/library/debian",
        "index.docker.io/debian",
        "127.0.0.1:5000/docker/docker",
        "127.0.0.1:5000/library/debian",
        "127.0.0.1:5000/debian",
        "192.168.0.1",
        "192.168.0.1:80",
        "192.168.0.1:8/debian",
        "192.168.0.2:25000/debian",
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "[fc00::1]:5000/docker",
        "[fc00::1]:5000/docker/docker",
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
        "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        "Docker/docker",
        "DOCKER/docker",
        // TestValidateRemoteName
        "docker-rules/docker",
        "docker---rules/docker",
        "doc/docker",
        "d/docker",
        "jess/t",
        "dock__er/docker",
    ];
    let invalid = [
        "https://github.com/docker/docker",
        "docker/Docker",
        "-docker",
        "-docker/docker",
        "-docker.io/docker/docker",
        "docker///docker",
        "docker.io/docker/Docker",
        "docker.io/docker///docker",
        "[fc00::1]",
        "[fc00::1]:5000",
        "fc00::1:5000/debian",
        "[fe80::1%eth0]:5000/debian",
        "[2001:db8:3:4::192.0.2.33]:5000/debian",
        "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        // TestValidateRemoteName
        "docker-/docker",
        "-docker-/docker",
        "____/____",
        "_docker/_docker",
        "dock..er/docker",
        "dock_.er/docker",
        "dock-.er/docker",
        "docker/",
        "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker",
    ];
    for v in valid {
        assert!(
            Reference::parse_normalized(v).is_ok(),
            "{v} should be valid"
        );
    }
    for v in invalid {
        assert!(
            Reference::parse_normalized(v).is_err(),
            "{v} should be invalid"
        );
    }
}

#[test]
fn parse_docker_ref_upstream() {
    let d = "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582";
    let cases = [
        ("busybox", "docker.io/library/busybox:latest".to_string()),
        (
            "busybox:latest",
            "docker.io/library/busybox:latest".to_string(),
        ),
        (
            &*format!("busybox@{d}"),
            format!("docker.io/library/busybox@{d}"),
        ),
        (
            "library/busybox",
            "docker.io/library/busybox:latest".to_string(),
        ),
        (
            "docker.io/busybox",
            "docker.io/library/busybox:latest".to_string(),
        ),
        (
            "docker.io/library/busybox",
            "docker.io/library/busybox:latest".to_string(),
        ),
        (
            "docker.io/busybox:latest",
            "docker.io/library/busybox:latest".to_string(),
        ),
        (
            "library/busybox:latest",
            "docker.io/library/busybox:latest".to_string(),
        ),
        (
            "docker.io/library/busybox:latest",
            "docker.io/library/busybox:latest".to_string(),
        ),
        (
            "gcr.io/library/busybox",
            "gcr.io/library/busybox:latest".to_string(),
        ),
        (
            &*format!("gcr.io/library/busybox:latest@{d}"),
            format!("gcr.io/library/busybox@{d}"),
        ),
    ];
    for (input, want) in cases {
        let got = Reference::parse_docker_ref(input).unwrap();
        assert_eq!(got.to_string(), want, "{input}");
        assert!(Reference::parse(&got.to_string()).is_ok());
    }
}

#[test]
fn normalized_errors_and_familiar_names() {
    assert_eq!(
        Reference::parse_normalized("Foo").unwrap_err().to_string(),
        "invalid reference format: repository name (library/Foo) must be lowercase"
    );
    let hex = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
    assert_eq!(
        Reference::parse_normalized(hex).unwrap_err().to_string(),
        format!("invalid repository name ({hex}), cannot specify 64-byte hexadecimal strings")
    );
    let r = Reference::parse_normalized("nginx:1.27").unwrap();
    assert_eq!(r.to_string(), "docker.io/library/nginx:1.27");
    assert_eq!(r.familiar(), "nginx:1.27");
    let r = Reference::parse_normalized("index.docker.io/user/app").unwrap();
    assert_eq!(r.to_string(), "docker.io/user/app");
    assert_eq!(r.familiar(), "user/app");
    let r = Reference::parse_normalized("localhost/app").unwrap();
    assert_eq!(r.to_string(), "localhost/app");
    assert!(Reference::parse_named("docker.io/library/nginx:1").is_ok());
    assert_eq!(
        Reference::parse_named("nginx:1"),
        Err(ReferenceError::NameNotCanonical)
    );
}

#[test]
fn kubelet_default_tag_and_invalid_image_name_message() {
    assert_eq!(kubelet_apply_default_tag("nginx").unwrap(), "nginx:latest");
    assert_eq!(kubelet_apply_default_tag("nginx:1").unwrap(), "nginx:1");
    let pinned = format!("nginx@{FF}");
    assert_eq!(kubelet_apply_default_tag(&pinned).unwrap(), pinned);
    assert_eq!(
        kubelet_apply_default_tag("Nginx").unwrap_err(),
        "Failed to apply default image tag \"Nginx\": couldn't parse image name \"Nginx\": \
         invalid reference format: repository name (library/Nginx) must be lowercase"
    );
    assert_eq!(
        kubelet_apply_default_tag("nginx:").unwrap_err(),
        "Failed to apply default image tag \"nginx:\": couldn't parse image name \"nginx:\": \
         invalid reference format"
    );
}
