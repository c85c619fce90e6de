//! GitLab Runner 19.4 `cache/cachekey/cachekey_test.go`, ported: `TestSanitize` (one test per
//! table case, named `case_<index>_<the raw key spelled out>`, each with the Go subtest name
//! `TestSanitize/<index>:<%q of the raw key>`), `TestSanitizeInvariants` and
//! `TestSanitizeIdempotent` (one test per input), against
//! `fleetsim_core::cache::key::sanitize` (`cache/cachekey/cachekey.go` `Sanitize`).
//!
//! Every case of the three Go tests is expressible; none is left out.

use fleetsim_core::cache::key::{KeyHandling, runner_key, sanitize};

/// `TestSanitize`'s assertions: no error and the expected key, or an error (Go then also
/// returns the empty key, which `Err` stands for here).
fn check(raw: &str, want: Result<&str, ()>) {
    match (sanitize(raw), want) {
        (Ok(got), Ok(want)) => assert_eq!(got, want, "Sanitize({raw:?})"),
        (Err(e), Err(())) => {
            assert_eq!(e.to_string(), format!("cache key {raw:?} could not be sanitized"));
        }
        (got, want) => panic!("Sanitize({raw:?}) = {got:?}, want {want:?}"),
    }
}

macro_rules! test_sanitize {
    ($($(#[$doc:meta])* $name:ident: $raw:expr => $want:ident $(($key:expr))?;)*) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                check($raw, test_sanitize!(@want $want $($key)?));
            }
        )*
    };
    (@want Ok $key:expr) => { Ok($key) };
    (@want Err) => { Err(()) };
}

mod test_sanitize {
    use super::check;

    test_sanitize! {
        /// `TestSanitize/0:""`
        case_00_empty: "" => Ok("");
        /// `TestSanitize/1:"fallback_key"`
        case_01_fallback_key: "fallback_key" => Ok("fallback_key");
        /// `TestSanitize/2:"some-job/some-ref"`
        case_02_some_dash_job_slash_some_dash_ref: "some-job/some-ref" => Ok("some-job/some-ref");
        /// `TestSanitize/3:".../...."`
        case_03_dot_dot_dot_slash_dot_dot_dot_dot: ".../...." => Ok(".../....");
        /// `TestSanitize/4:"..."`
        case_04_dot_dot_dot: "..." => Ok("...");
        /// `TestSanitize/5:"fallback_key/"`
        case_05_fallback_key_slash: "fallback_key/" => Ok("fallback_key");
        /// `TestSanitize/6:"fallback_key "`
        case_06_fallback_key_sp: "fallback_key " => Ok("fallback_key");
        /// `TestSanitize/7:"fallback_key\\"`
        case_07_fallback_key_bs: "fallback_key\\" => Ok("fallback_key");
        /// `TestSanitize/8:"fallback_key/ \\"`
        case_08_fallback_key_slash_sp_bs: "fallback_key/ \\" => Ok("fallback_key");
        /// `TestSanitize/9:"fallback_key/ / \\  \\"`
        case_09_fallback_key_slash_sp_slash_sp_bs_sp_sp_bs: "fallback_key/ / \\  \\" => Ok("fallback_key");
        /// `TestSanitize/10:"fallback_key/o"`
        case_10_fallback_key_slash_o: "fallback_key/o" => Ok("fallback_key/o");
        /// `TestSanitize/11:"fallback_key / \\o"`
        case_11_fallback_key_sp_slash_sp_bs_o: "fallback_key / \\o" => Ok("fallback_key / /o");
        /// `TestSanitize/12:"\t foo bar \t\r"`
        case_12_tab_sp_foo_sp_bar_sp_tab_cr: "\t foo bar \t\r" => Ok("\t foo bar");
        /// `TestSanitize/13:" foo / bar "`
        case_13_sp_foo_sp_slash_sp_bar_sp: " foo / bar " => Ok(" foo / bar");
        /// `TestSanitize/14:"foo\r"`
        case_14_foo_cr: "foo\r" => Ok("foo");
        /// `TestSanitize/15:"foo\t"`
        case_15_foo_tab: "foo\t" => Ok("foo");
        /// `TestSanitize/16:"foo \t \r "`
        case_16_foo_sp_tab_sp_cr_sp: "foo \t \r " => Ok("foo");
        /// `TestSanitize/17:"\\"`
        case_17_bs: "\\" => Err;
        /// `TestSanitize/18:"\\."`
        case_18_bs_dot: "\\." => Err;
        /// `TestSanitize/19:"/"`
        case_19_slash: "/" => Err;
        /// `TestSanitize/20:" "`
        case_20_sp: " " => Err;
        /// `TestSanitize/21:"."`
        case_21_dot: "." => Err;
        /// `TestSanitize/22:".."`
        case_22_dot_dot: ".." => Err;
        /// `TestSanitize/23:" / "`
        case_23_sp_slash_sp: " / " => Err;
        /// `TestSanitize/24:"//"`
        case_24_slash_slash: "//" => Err;
        /// `TestSanitize/25:"//\\"`
        case_25_slash_slash_bs: r"//\" => Err;
        /// `TestSanitize/26:"../."`
        case_26_dot_dot_slash_dot: "../." => Err;
        /// `TestSanitize/27:"foo\\bar\\..\\.."`
        case_27_foo_bs_bar_bs_dot_dot_bs_dot_dot: "foo\\bar\\..\\.." => Err;
        /// `TestSanitize/28:"foo/bar/../.."`
        case_28_foo_slash_bar_slash_dot_dot_slash_dot_dot: "foo/bar/../.." => Err;
        /// `TestSanitize/29:" \t\r\n"`
        case_29_sp_tab_cr_lf: " \t\r\n" => Err;
        /// `TestSanitize/30:"something %2F something"`
        case_30_something_sp_pct_2f_sp_something: "something %2F something" => Ok("something / something");
        /// `TestSanitize/31:"something %2f something"`
        case_31_something_sp_pct_2f_sp_something: "something %2f something" => Ok("something / something");
        /// `TestSanitize/32:"some%2f../job/some/ref/."`
        case_32_some_pct_2f_dot_dot_slash_job_slash_some_slash_ref_slash_dot: "some%2f../job/some/ref/." => Ok("job/some/ref");
        /// `TestSanitize/33:"%2E"`
        case_33_pct_2e: "%2E" => Err;
        /// `TestSanitize/34:"%2E%2E"`
        case_34_pct_2e_pct_2e: "%2E%2E" => Err;
        /// `TestSanitize/35:"%2E%2E%2E"`
        case_35_pct_2e_pct_2e_pct_2e: "%2E%2E%2E" => Ok("...");
        /// `TestSanitize/36:"%2e"`
        case_36_pct_2e: "%2e" => Err;
        /// `TestSanitize/37:"%2e%2E"`
        case_37_pct_2e_pct_2e: "%2e%2E" => Err;
        /// `TestSanitize/38:".%2E"`
        case_38_dot_pct_2e: ".%2E" => Err;
        /// `TestSanitize/39:"%2e."`
        case_39_pct_2e_dot: "%2e." => Err;
        /// `TestSanitize/40:"%2E%2e%2E"`
        case_40_pct_2e_pct_2e_pct_2e: "%2E%2e%2E" => Ok("...");
        /// `TestSanitize/41:"%5C"`
        case_41_pct_5c: "%5C" => Ok("%5C");
        /// `TestSanitize/42:"%5c"`
        case_42_pct_5c: "%5c" => Ok("%5c");
        /// `TestSanitize/43:"foo/./bar"`
        case_43_foo_slash_dot_slash_bar: "foo/./bar" => Ok("foo/bar");
        /// `TestSanitize/44:"foo/blipp/../bar"`
        case_44_foo_slash_blipp_slash_dot_dot_slash_bar: "foo/blipp/../bar" => Ok("foo/bar");
        /// `TestSanitize/45:"/foo/bar"`
        case_45_slash_foo_slash_bar: "/foo/bar" => Ok("foo/bar");
        /// `TestSanitize/46:"//foo/bar"`
        case_46_slash_slash_foo_slash_bar: "//foo/bar" => Ok("foo/bar");
        /// `TestSanitize/47:"./foo/bar"`
        case_47_dot_slash_foo_slash_bar: "./foo/bar" => Ok("foo/bar");
        /// `TestSanitize/48:"../foo/bar"`
        case_48_dot_dot_slash_foo_slash_bar: "../foo/bar" => Ok("foo/bar");
        /// `TestSanitize/49:".../foo/bar"`
        case_49_dot_dot_dot_slash_foo_slash_bar: ".../foo/bar" => Ok(".../foo/bar");
        /// `TestSanitize/50:"foo/bar/.."`
        case_50_foo_slash_bar_slash_dot_dot: "foo/bar/.." => Ok("foo");
        /// `TestSanitize/51:"foo/bar/../../../.././blerp"`
        case_51_foo_slash_bar_slash_dot_dot_slash_dot_dot_slash_dot_dot_slash_dot_dot_slash_dot_slash_blerp: "foo/bar/../../../.././blerp" => Ok("blerp");
        /// `TestSanitize/52:"a/b/c/../../d"`
        case_52_a_slash_b_slash_c_slash_dot_dot_slash_dot_dot_slash_d: "a/b/c/../../d" => Ok("a/d");
        /// `TestSanitize/53:"job\\name/git\\ref"`
        case_53_job_bs_name_slash_git_bs_ref: r"job\name/git\ref" => Ok("job/name/git/ref");
        /// `TestSanitize/54:"foo\\.\\bar"`
        case_54_foo_bs_dot_bs_bar: "foo\\.\\bar" => Ok("foo/bar");
        /// `TestSanitize/55:"foo\\blipp\\..\\bar"`
        case_55_foo_bs_blipp_bs_dot_dot_bs_bar: "foo\\blipp\\..\\bar" => Ok("foo/bar");
        /// `TestSanitize/56:"\\foo\\bar"`
        case_56_bs_foo_bs_bar: "\\foo\\bar" => Ok("foo/bar");
        /// `TestSanitize/57:"\\\\foo\\bar"`
        case_57_bs_bs_foo_bs_bar: "\\\\foo\\bar" => Ok("foo/bar");
        /// `TestSanitize/58:".\\foo\\bar"`
        case_58_dot_bs_foo_bs_bar: ".\\foo\\bar" => Ok("foo/bar");
        /// `TestSanitize/59:"..\\foo\\bar"`
        case_59_dot_dot_bs_foo_bs_bar: "..\\foo\\bar" => Ok("foo/bar");
        /// `TestSanitize/60:"...\\foo\\bar"`
        case_60_dot_dot_dot_bs_foo_bs_bar: "...\\foo\\bar" => Ok(".../foo/bar");
        /// `TestSanitize/61:"foo\\bar\\.."`
        case_61_foo_bs_bar_bs_dot_dot: "foo\\bar\\.." => Ok("foo");
        /// `TestSanitize/62:"foo\\bar\\..\\..\\..\\..\\.\\blerp"`
        case_62_foo_bs_bar_bs_dot_dot_bs_dot_dot_bs_dot_dot_bs_dot_dot_bs_dot_bs_blerp: "foo\\bar\\..\\..\\..\\..\\.\\blerp" => Ok("blerp");
        /// `TestSanitize/63:"foo/ /bar"`
        case_63_foo_slash_sp_slash_bar: "foo/ /bar" => Ok("foo/ /bar");
        /// `TestSanitize/64:"foo/ /"`
        case_64_foo_slash_sp_slash: "foo/ /" => Ok("foo");
        /// `TestSanitize/65:"foo/ / /"`
        case_65_foo_slash_sp_slash_sp_slash: "foo/ / /" => Ok("foo");
    }
}

/// `TestSanitizeInvariants`: properties of every sanitised key. The Go test skips an input
/// that cannot be sanitised; here each input's outcome is pinned too, so a case cannot pass
/// by being refused.
mod test_sanitize_invariants {
    use super::sanitize;

    fn invariants(raw: &str, sanitisable: bool) {
        let key = match sanitize(raw) {
            Ok(k) => k.into_owned(),
            Err(_) => String::new(),
        };
        assert_eq!(!key.is_empty(), sanitisable, "Sanitize({raw:?}) = {key:?}");
        if key.is_empty() {
            return; // unsanitisable, nothing to check (as in Go)
        }
        assert!(!key.starts_with('/'), "must not start with /: {key:?}");
        assert!(!(key == ".." || key.starts_with("../")), "must not start with ..: {key:?}");
        assert!(!key.contains('\\'), "must not contain backslash: {key:?}");
        assert!(!key.ends_with(' '), "must not end with space: {key:?}");
        assert!(!key.ends_with('/'), "must not end with /: {key:?}");
        for seg in key.split('/') {
            assert_ne!(seg, ".", "must not contain '.' segment: {key:?}");
            assert_ne!(seg, "..", "must not contain '..' segment: {key:?}");
        }
    }

    macro_rules! invariants {
        ($($name:ident: $raw:expr, $ok:expr;)*) => {
            $(
                #[doc = concat!("`TestSanitizeInvariants/", $raw, "`")]
                #[test]
                fn $name() {
                    invariants($raw, $ok);
                }
            )*
        };
    }

    invariants! {
        a: "a", true;
        a_slash_b: "a/b", true;
        dot_dot_slash_a: "../a", true;
        a_slash_dot_dot_slash_b: "a/../b", true;
        a_slash_dot_slash_b: "a/./b", true;
        a_bs_b: "a\\b", true;
        a_bs_dot_dot_bs_bs_b: r"a\..\\b", true;
        slash_a_slash_b_slash: "/a/b/", true;
        sp_a_sp: " a ", true;
        dot_dot_dot: "...", true;
        pct_2e_pct_2e_slash_pct_2f: "%2e%2e/%2f", false;
        a_slash_b_slash_c_slash_dot_dot_slash_dot_dot_slash_d_slash_e: "a/b/c/../../d/e", true;
    }
}

/// `TestSanitizeIdempotent`: sanitising a clean key returns it unchanged, with no error.
mod test_sanitize_idempotent {
    use super::sanitize;

    fn idempotent(raw: &str) {
        let first = sanitize(raw).expect("first Sanitize");
        let second = sanitize(&first).expect("second Sanitize");
        assert_eq!(first, second, "sanitise should be idempotent");
    }

    macro_rules! idempotent {
        ($($name:ident: $raw:expr;)*) => {
            $(
                #[doc = concat!("`TestSanitizeIdempotent/", $raw, "`")]
                #[test]
                fn $name() {
                    idempotent($raw);
                }
            )*
        };
    }

    idempotent! {
        fallback_key: "fallback_key";
        some_dash_job_slash_some_dash_ref: "some-job/some-ref";
        a_slash_b_slash_c: "a/b/c";
        dot_dot_dot: "...";
        dot_dot_dot_slash_foo_slash_bar: ".../foo/bar";
    }
}

/// `shells/abstract.go` `newCacheConfig`: with `FF_HASH_CACHE_KEYS` the sanitiser is the
/// identity (`sanitizer = func(s string) (string, error) { return s, nil }`), so `foo/` and
/// `foo` stay two keys and `..` is a key.
#[test]
fn new_cache_config_with_ff_hash_cache_keys_does_not_sanitise() {
    assert_eq!(runner_key("foo/", KeyHandling::Hash).unwrap(), "foo/");
    assert_eq!(runner_key("..", KeyHandling::Hash).unwrap(), "..");
    assert_eq!(runner_key("foo/", KeyHandling::Sanitize).unwrap(), "foo");
    assert!(runner_key("..", KeyHandling::Sanitize).is_err());
}
