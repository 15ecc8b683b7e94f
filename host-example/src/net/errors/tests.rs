use std::io::ErrorKind;
use std::time::Duration;

use super::{FailureKind, explain, is_transient_io};
use crate::net::proxy::{ProxyUrl, Route};
use crate::origin::Origin;

fn origin() -> Origin {
    Origin::of(&url::Url::parse("https://wif-test.invalid/v1/oauth/token").unwrap()).unwrap()
}

fn proxied() -> Route {
    Route::Proxy {
        proxy: ProxyUrl::parse("http://svc:s3cret@proxy.invalid:3128").unwrap(),
        source: "https_proxy",
    }
}

#[test]
fn a_failed_lookup_is_a_dns_failure_naming_the_host_or_the_proxy() {
    let direct = explain(
        &ureq::Error::HostNotFound,
        &origin(),
        &Route::Direct("no proxy".into()),
        Duration::from_secs(30),
    );
    assert_eq!(direct.kind, FailureKind::Failed);
    assert_eq!(
        direct.message,
        "DNS: the host wif-test.invalid was not found"
    );

    let through_proxy = explain(
        &ureq::Error::HostNotFound,
        &origin(),
        &proxied(),
        Duration::from_secs(30),
    );
    assert!(
        through_proxy
            .message
            .starts_with("DNS: the proxy host proxy.invalid was not found"),
        "{}",
        through_proxy.message
    );
    assert!(!through_proxy.message.contains("s3cret"));
}

#[test]
fn a_lookup_out_of_time_is_a_dns_timeout_naming_the_host_or_the_proxy() {
    let timeout = ureq::Error::Timeout(ureq::Timeout::Resolve);
    let direct = explain(
        &timeout,
        &origin(),
        &Route::Direct("no proxy".into()),
        Duration::from_secs(30),
    );
    assert_eq!(direct.kind, FailureKind::Timeout);
    assert_eq!(
        direct.message,
        "DNS: no answer for the host wif-test.invalid within 30s"
    );

    let through_proxy = explain(&timeout, &origin(), &proxied(), Duration::from_secs(30));
    assert_eq!(through_proxy.kind, FailureKind::Timeout);
    assert!(
        through_proxy
            .message
            .starts_with("DNS: no answer for the proxy host proxy.invalid within 30s"),
        "{}",
        through_proxy.message
    );
    assert!(!through_proxy.message.contains("s3cret"));
}

#[test]
fn passing_io_failures_are_transient_and_others_permanent() {
    for kind in [
        ErrorKind::TimedOut,
        ErrorKind::ConnectionRefused,
        ErrorKind::ConnectionReset,
        ErrorKind::AddrInUse,
        ErrorKind::Interrupted,
    ] {
        assert!(is_transient_io(kind), "{kind}");
    }
    for kind in [
        ErrorKind::NotFound,
        ErrorKind::PermissionDenied,
        ErrorKind::InvalidInput,
        ErrorKind::InvalidData,
        ErrorKind::AlreadyExists,
    ] {
        assert!(!is_transient_io(kind), "{kind}");
    }
}
