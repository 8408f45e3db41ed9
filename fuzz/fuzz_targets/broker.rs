//! Any bytes as a broker exporter's exposition (RabbitMQ, kafka-exporter, the NATS exporter),
//! read with each broker's default mapping: no panic, and every reading is a real number.
#![no_main]

#[path = "../../src/model/broker.rs"]
#[allow(dead_code)]
mod broker;
#[path = "../../src/model/exposition.rs"]
#[allow(dead_code)]
mod exposition;
#[path = "../../src/model/series.rs"]
#[allow(dead_code)]
mod series;
#[path = "../../src/model/traffic.rs"]
#[allow(dead_code)]
mod traffic;
#[path = "../../src/model/accesslog/mod.rs"]
#[allow(dead_code)]
mod accesslog;
#[path = "../../src/model/sketch.rs"]
#[allow(dead_code)]
mod sketch;
#[path = "../../src/model/bytes.rs"]
#[allow(dead_code)]
mod bytes;
#[path = "../../src/model/keyed.rs"]
#[allow(dead_code)]
mod keyed;
/// model/time.rs reads the clock through k8s-openapi; the parsers only need its type.
mod time {
    pub type UnixSecs = i64;
}

use broker::BrokerKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for kind in ["rabbitmq", "kafka", "nats"] {
        let kind = BrokerKind::parse(kind).expect("a known broker");
        let Ok(readings) = broker::read(kind.name(), &kind.default_mapping(), text) else { continue };
        for (queue, reading) in readings {
            let _ = queue.label();
            assert!(!reading.backlog.is_nan(), "{queue:?}");
            for value in reading.unacked.iter().chain(&reading.consumers) {
                assert!(!value.is_nan());
            }
            for counter in &reading.counters {
                assert!(counter.iter().all(|(_, v)| !v.is_nan()));
            }
        }
    }
});
