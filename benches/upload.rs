//! The hot upload path: SHA-256 throughput (the ceiling), and in-process monolithic and
//! chunked uploads of 64 MiB through the domain layer (hash + write + fsync + publish).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use semdock::domain::{Limits, Registry};
use semdock::model::{Digest, FeedName, Repository};

const SIZE: usize = 64 << 20;
const CHUNK: usize = 16 << 20;
/// How the HTTP layer hands body bytes to the writer: socket-sized pieces.
const PIECE: usize = 64 << 10;

fn payload() -> Vec<u8> {
    (0..SIZE)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
        .collect()
}

fn registry() -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let registry = semdock::server::open_embedded_registry(
        dir.path(),
        Limits {
            manifest_bytes: 4 << 20,
            upload_bytes: 1 << 40,
            upload_sessions: 1 << 20,
            metadata_cache_bytes: 32 << 20,
            upstream_timeout_seconds: 30,
        },
    )
    .unwrap();
    registry
        .feeds()
        .ensure(&"library".parse::<FeedName>().unwrap())
        .unwrap();
    (dir, registry)
}

fn upload(c: &mut Criterion) {
    let data = payload();
    let digest = Digest::of(&data);
    let repo: Repository = "library/bench".parse().unwrap();
    let mut group = c.benchmark_group("upload");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(10);

    group.bench_function("sha256_64MiB", |b| b.iter(|| Digest::of(&data)));

    group.bench_function("monolithic_64MiB", |b| {
        b.iter_batched(
            registry,
            |(dir, reg)| {
                let id = reg
                    .uploads()
                    .start(&repo, "bench", semdock::model::Algorithm::Sha256)
                    .unwrap();
                let mut append = reg.uploads().append(&repo, &id, None).unwrap();
                for piece in data.chunks(PIECE) {
                    append.write(piece).unwrap();
                }
                reg.uploads().complete(append, &digest).unwrap();
                (dir, reg)
            },
            criterion::BatchSize::PerIteration,
        );
    });

    group.bench_function("chunked_16MiB_64MiB", |b| {
        b.iter_batched(
            registry,
            |(dir, reg)| {
                let id = reg
                    .uploads()
                    .start(&repo, "bench", semdock::model::Algorithm::Sha256)
                    .unwrap();
                let chunks: Vec<_> = data.chunks(CHUNK).collect();
                let (last, rest) = chunks.split_last().unwrap();
                for chunk in rest {
                    let mut append = reg.uploads().append(&repo, &id, None).unwrap();
                    for piece in chunk.chunks(PIECE) {
                        append.write(piece).unwrap();
                    }
                    reg.uploads().finish_chunk(append).unwrap();
                }
                let mut append = reg.uploads().append(&repo, &id, None).unwrap();
                for piece in last.chunks(PIECE) {
                    append.write(piece).unwrap();
                }
                reg.uploads().complete(append, &digest).unwrap();
                (dir, reg)
            },
            criterion::BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, upload);
criterion_main!(benches);
