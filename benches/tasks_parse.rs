//! `cargo bench --bench tasks_parse`: the throughput of the `tasks.md` parser on real
//! text, the concatenation of every corpus `tasks.md` (`tests/corpus`, a byte-for-byte copy of the shared corpus, or the
//! folder named by `SPECTASK_CORPUS`) repeated to about 10 MB. The orchestrator
//! re-parses a plan on every tick of a task, so parsing must cost next to nothing; the
//! target is at least 50 MB/s in release.
//!
//! Also measured: one status write on the largest corpus file, which re-parses it.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spectask::domain::tasks_md::{self, Mark};

const TARGET_BYTES: usize = 10 * 1024 * 1024;

fn corpus_dir() -> PathBuf {
    match std::env::var_os("SPECTASK_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus")),
    }
}

/// Every `tasks.md` under `<corpus>/<format>/<set>/`, in a stable order.
fn corpus_files() -> Vec<String> {
    let mut paths = Vec::new();
    for format in ["kiro", "speckit", "other"] {
        let Ok(sets) = std::fs::read_dir(corpus_dir().join(format)) else {
            continue;
        };
        for set in sets.flatten() {
            let path = set.path().join("tasks.md");
            if path.is_file() {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

fn bench(c: &mut Criterion) {
    let files = corpus_files();
    assert!(
        !files.is_empty(),
        "no corpus tasks.md under {}",
        corpus_dir().display()
    );
    let one_pass = files.join("\n");
    let mut text = String::with_capacity(TARGET_BYTES + one_pass.len());
    while text.len() < TARGET_BYTES {
        text.push_str(&one_pass);
        text.push('\n');
    }
    let items = tasks_md::parse(&text).items.len();
    eprintln!(
        "tasks_parse: {} bytes, {} files per pass, {items} items",
        text.len(),
        files.len()
    );

    let mut group = c.benchmark_group("tasks_parse");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(10);
    group.bench_function("parse_corpus_10MB", |b| {
        b.iter(|| tasks_md::parse(black_box(&text)))
    });
    group.finish();

    let largest = files.iter().max_by_key(|f| f.len()).unwrap();
    let line = tasks_md::parse(largest)
        .items
        .last()
        .map_or(1, |item| item.line);
    let mut group = c.benchmark_group("tasks_set_mark");
    group.throughput(Throughput::Bytes(largest.len() as u64));
    group.bench_function("set_mark_largest_file", |b| {
        b.iter(|| tasks_md::set_mark(black_box(largest), line, Mark::Done))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
