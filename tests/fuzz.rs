//! Arbitrary bytes and strings into every parser and decoder: an error is
//! fine, a panic never is.

use chrono::DateTime;
use proptest::prelude::*;

use chronik::formats::input::{InputFormat, read_event_bytes, read_events};
use chronik::store::record;
use chronik::{Event, KnownAt, Value, When};

const FORMATS: [InputFormat; 3] = [InputFormat::Toml, InputFormat::Json, InputFormat::JsonLines];

/// Strings made of the characters event files and dates are made of, so
/// that the fuzzing reaches past the first syntax check.
fn date_like() -> impl Strategy<Value = String> {
    "[0-9TZ:+.\\- ]{0,30}"
}

fn event_like() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("[[event]]\n".to_string()),
        Just("id = \"a\"\n".to_string()),
        Just("at = \"2019\"\n".to_string()),
        Just("title = \"t\"\n".to_string()),
        Just("changes = [{ set = \"a.b\", value = 1 }]\n".to_string()),
        Just("{\"id\": \"a\", \"at\": \"2019\", \"title\": \"t\"}\n".to_string()),
        Just("{\"event\": [".to_string()),
        Just("]}".to_string()),
        Just("{ ref = \"x\" }".to_string()),
        Just("{\"amount\": 1e400, \"unit\": \"USD\"}".to_string()),
        "[\\[\\]{}\",=:a-z0-9 \n]{0,12}",
    ];
    proptest::collection::vec(pieces, 0..12).prop_map(|p| p.concat())
}

fn sample_record() -> Vec<u8> {
    let text = "[[event]]\nid = \"a\"\nat = \"2019-06\"\ntitle = \"t\"\nsummary = \"s\"\ntags = [\"x\"]\nchanges = [{ add = \"a.b\", value = { ref = \"c\" }, until = \"2020\" }, { set = \"a.c\", value = { amount = 5, unit = \"USD\" } }]\n";
    let event: Event = read_events(text, InputFormat::Toml, "t")
        .unwrap()
        .remove(0)
        .event;
    record::encode(3, DateTime::UNIX_EPOCH, [1; 32], &event).0
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn dates_never_panic(text in any::<String>(), near in date_like()) {
        let _ = When::parse(&text);
        if let Ok(when) = When::parse(&near) {
            // Whatever parses prints back to itself, and has an end after its start.
            prop_assert_eq!(When::parse(&when.to_string()), Ok(when));
            prop_assert!(when.end() > when.start());
        }
        let _ = KnownAt::parse(&near);
        let _ = Value::parse_literal(&text);
    }

    #[test]
    fn readers_never_panic(text in any::<String>(), near in event_like(), bytes in any::<Vec<u8>>()) {
        for format in FORMATS {
            let _ = read_events(&text, format, "f");
            let _ = read_events(&near, format, "f");
            let _ = read_event_bytes(&bytes, format, "f");
        }
        let _ = InputFormat::sniff(&near);
    }

    #[test]
    fn the_record_decoder_never_panics(bytes in any::<Vec<u8>>(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        let _ = record::decode(&bytes, [0; 32]);
        let mut damaged = sample_record();
        for (at, value) in flips {
            let i = at.index(damaged.len());
            damaged[i] = value;
        }
        let _ = record::decode(&damaged, [1; 32]);
        let _ = record::hash_matches(&damaged, &[1; 32]);
        let whole = sample_record();
        let _ = record::decode(&whole[..cut.index(whole.len())], [1; 32]);
    }
}
