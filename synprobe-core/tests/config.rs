//! Settings are checked in the core: each rule of each `validate()`, and every entry point refusing nonsense
//! with a typed error (never a panic, never a run on nonsense).

use synprobe_core::analysis::AnalyzerConfig;
use synprobe_core::capture::CaptureReader;
use synprobe_core::matcher::MatchConfig;
use synprobe_core::session::{Session, SessionConfig};
use synprobe_core::{
    replay, replay_parallel, ConfigError, Duration, Engine, EngineConfig, Error, ReplayOptions,
};

const SECOND: Duration = Duration::from_millis(1000);

fn zero(setting: &'static str) -> ConfigError {
    ConfigError::Zero { setting }
}

fn not_positive(setting: &'static str, value: Duration) -> ConfigError {
    ConfigError::NotPositive { setting, value }
}

fn negative(setting: &'static str, value: Duration) -> ConfigError {
    ConfigError::Negative { setting, value }
}

#[test]
fn the_defaults_are_valid() {
    assert_eq!(MatchConfig::default().validate(), Ok(()));
    assert_eq!(AnalyzerConfig::default().validate(), Ok(()));
    assert_eq!(EngineConfig::default().validate(), Ok(()));
    assert_eq!(ReplayOptions::default().validate(), Ok(()));
    assert_eq!(SessionConfig::default().validate(), Ok(()));
    #[cfg(feature = "live")]
    assert_eq!(
        synprobe_core::live::ProberConfig::default().validate(),
        Ok(())
    );
}

#[test]
fn matcher_rules() {
    let with = |f: fn(&mut MatchConfig)| {
        let mut c = MatchConfig::default();
        f(&mut c);
        c.validate()
    };
    assert_eq!(
        with(|c| c.timeout = Duration(0)),
        Err(not_positive("matcher.timeout", Duration(0)))
    );
    assert_eq!(
        with(|c| c.timeout = Duration(-SECOND.0)),
        Err(not_positive("matcher.timeout", Duration(-SECOND.0)))
    );
    assert_eq!(with(|c| c.timeout = Duration(1)), Ok(()));
    assert_eq!(
        with(|c| c.max_in_flight = 0),
        Err(zero("matcher.max_in_flight"))
    );
    assert_eq!(with(|c| c.max_in_flight = 1), Ok(()));
}

#[test]
fn analyzer_rules() {
    let with = |f: fn(&mut AnalyzerConfig)| {
        let mut c = AnalyzerConfig::default();
        f(&mut c);
        c.validate()
    };
    assert_eq!(
        with(|c| c.max_servers = 0),
        Err(zero("analyzer.max_servers"))
    );
    assert_eq!(
        with(|c| c.lookahead = Duration(-1)),
        Err(negative("analyzer.lookahead", Duration(-1)))
    );
    // Documented as meaningful: nothing held back, no wait after an RST.
    assert_eq!(with(|c| c.max_pending = 0), Ok(()));
    assert_eq!(with(|c| c.lookahead = Duration(0)), Ok(()));
}

#[test]
fn session_rules() {
    let with = |f: fn(&mut SessionConfig)| {
        let mut c = SessionConfig::default();
        f(&mut c);
        c.validate()
    };
    assert_eq!(with(|c| c.ttl = 0), Err(zero("session.ttl")));
    assert_eq!(with(|c| c.max_ttl = 0), Err(zero("session.max_ttl")));
    assert_eq!(with(|c| c.budget = 0), Err(zero("session.budget")));
    assert_eq!(with(|c| c.icmp_burst = 0), Err(zero("session.icmp_burst")));
    assert_eq!(
        with(|c| c.min_rto = Duration(0)),
        Err(not_positive("session.min_rto", Duration(0)))
    );
    assert_eq!(
        with(|c| c.max_rto = Duration(-1)),
        Err(not_positive("session.max_rto", Duration(-1)))
    );
    assert_eq!(
        with(|c| {
            c.min_rto = Duration::from_millis(500);
            c.max_rto = Duration::from_millis(100);
        }),
        Err(ConfigError::Inverted {
            low: "session.min_rto",
            low_value: Duration::from_millis(500),
            high: "session.max_rto",
            high_value: Duration::from_millis(100),
        })
    );
    assert_eq!(
        with(|c| c.max_rto = c.min_rto),
        Ok(()),
        "equal bounds are a fixed timeout"
    );
    assert_eq!(
        with(|c| c.first_answer_wait = Duration(0)),
        Err(not_positive("session.first_answer_wait", Duration(0)))
    );
    assert_eq!(
        with(|c| c.icmp_interval = Duration(-1)),
        Err(negative("session.icmp_interval", Duration(-1)))
    );
    assert_eq!(with(|c| c.icmp_interval = Duration(0)), Ok(()));
    assert_eq!(
        with(|c| c.baseline_ports = vec![1, 0]),
        Err(ConfigError::PortZero {
            setting: "session.baseline_ports"
        })
    );
    // Documented as meaningful: one SYN, no TOS discriminator, no baseline ports.
    assert_eq!(with(|c| c.retries = 0), Ok(()));
    assert_eq!(with(|c| c.tos = 0), Ok(()));
    assert_eq!(with(|c| c.baseline_ports.clear()), Ok(()));
}

#[cfg(feature = "live")]
#[test]
fn prober_rules() {
    use synprobe_core::live::{Job, Prober, ProberConfig};
    let with = |f: fn(&mut ProberConfig)| {
        let mut c = ProberConfig::default();
        f(&mut c);
        c.validate()
    };
    assert_eq!(with(|c| c.max_pps = 0), Err(zero("prober.max_pps")));
    assert_eq!(
        with(|c| c.interface = Some(String::new())),
        Err(ConfigError::Empty {
            setting: "prober.interface"
        })
    );
    assert_eq!(with(|c| c.session.budget = 0), Err(zero("session.budget")));
    // `open` checks the settings before it touches the network (so this needs no privilege).
    let bad = ProberConfig {
        max_pps: 0,
        ..ProberConfig::default()
    };
    let jobs = [Job::new("127.0.0.1".parse().expect("address"), 9)];
    assert!(matches!(
        Prober::open(bad, &jobs),
        Err(Error::Config(ConfigError::Zero {
            setting: "prober.max_pps"
        }))
    ));
}

#[test]
fn entry_points_refuse_nonsense() {
    let bad_engine = EngineConfig {
        matcher: MatchConfig {
            timeout: Duration(-1),
            ..MatchConfig::default()
        },
        ..EngineConfig::default()
    };
    assert_eq!(
        Engine::new(bad_engine).err(),
        Some(not_positive("matcher.timeout", Duration(-1)))
    );
    assert_eq!(
        EngineConfig {
            analyzer: AnalyzerConfig {
                max_servers: 0,
                ..AnalyzerConfig::default()
            },
            ..EngineConfig::default()
        }
        .validate(),
        Err(zero("analyzer.max_servers"))
    );

    let options = ReplayOptions {
        engine: bad_engine,
        ..ReplayOptions::default()
    };
    assert_eq!(
        options.validate(),
        Err(not_positive("matcher.timeout", Duration(-1)))
    );
    let pcap = synprobe_core::build::Timeline::starting_at(1_700_000_000)
        .write_pcap(Vec::new())
        .expect("an empty pcap");
    for parallel in [false, true] {
        let mut reader = CaptureReader::new(&pcap[..]).expect("reads");
        let r = if parallel {
            replay_parallel(&mut reader, &options, |_, _| {}, |_| {})
        } else {
            replay(&mut reader, &options, |_, _| {}, |_| {})
        };
        match r {
            Err(e @ Error::Config(ConfigError::NotPositive { .. })) => assert_eq!(
                e.to_string(),
                "invalid configuration: matcher.timeout must be longer than zero, not -0.000000001 s"
            ),
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    let session = SessionConfig {
        budget: 0,
        ..SessionConfig::default()
    };
    let a = "198.18.0.2".parse().expect("address");
    assert_eq!(
        Session::new(a, &[80], a, session, 40000, 1).err(),
        Some(zero("session.budget"))
    );
}
