//! Per-stage micro-benchmarks of the snapshot and restore data path, on one core, through
//! the library's own functions: so a regression in one stage shows on its own.
//!
//! `cargo bench -p snapvault-repo --bench stages` (about a minute; add a filter such as
//! `-- seal` to run one group, or `-- --measurement-time 5` for steadier figures).
//!
//! | group | what | input |
//! |---|---|---|
//! | `chunker` | keyed FastCDC gear cut points (`Chunker::split`) | 32 MiB random |
//! | `hash` | keyed BLAKE3 blob id (`Crypto::blob_id`); plain BLAKE3 pack id | 1 MiB, 16 MiB |
//! | `zstd` | `zstd::bulk::compress` level 3; the compressibility trial of `blob::encode` | 1 MiB compressible / random |
//! | `seal` | XChaCha20-Poly1305 seal / open; `blob::encode` / `encode_in_place`; `blob::decode` / `decode_in_place` (open + verify id) | 1 MiB |
//! | `pack` | `PackWriter` add + finish (pack id hashed while adding, header seal), fresh or recycled buffer | 16 × 1 MiB sealed blobs |
//!
//! Benchmarks named `reference_*` are not snapvault code: they are floors (the same work with
//! reused buffers or contexts) so the cost of allocation around a stage is visible.
//! | `index` | `Index::get` hits and misses in an index of 1,000,000 blobs; building it | 10,000 lookups |
//! | `pipeline_1core` | chunk → id → encode → pack, all on one thread, buffers recycled as the real pipeline does | 32 MiB random |
//!
//! `pipeline_1core` is the per-byte work of a first snapshot of photos without any I/O,
//! thread hand-off or metadata: docs/benchmarks.md compares it with the stages' sum and
//! with the real pipeline.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, RngCore, SeedableRng, rngs::StdRng};

use snapvault_repo::blob::{self, BlobType, Compression, EncodedBlob, PlainBuf};
use snapvault_repo::chunker::Chunker;
use snapvault_repo::config::ChunkerParams;
use snapvault_repo::crypto::{Crypto, MasterKey};
use snapvault_repo::id::{BlobId, Id, PackId};
use snapvault_repo::index::Index;
use snapvault_repo::pack::{PackEntry, PackWriter};

/// Where a recycled pack buffer starts its pack: the block size of direct I/O, as the
/// packer asks for.
const ALIGN: usize = 4096;

const MIB: usize = 1 << 20;

fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; n];
    StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// Text-like data that zstd shrinks about 3–5× (words drawn from a small vocabulary, with
/// numbers), standing in for tree blobs, sidecars and uncompressed formats.
fn compressible(n: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "photo",
        "IMG_",
        ".HEIC",
        "DCIM",
        "100APPLE",
        "\"mtime\":",
        "\"size\":",
        "Live",
        "adjustment",
        "<key>",
        "</key>",
        "<string>",
        "com.apple",
        "2023-07-14",
        "content",
        "\n",
        " ",
        ",",
        "{",
        "}",
    ];
    let mut r = StdRng::seed_from_u64(seed);
    let mut v = Vec::with_capacity(n + 32);
    while v.len() < n {
        if r.gen_ratio(1, 4) {
            v.extend_from_slice(r.gen_range(0u32..100_000).to_string().as_bytes());
        } else {
            v.extend_from_slice(WORDS[r.gen_range(0..WORDS.len())].as_bytes());
        }
    }
    v.truncate(n);
    v
}

fn keyed() -> Crypto {
    Crypto::Keyed(MasterKey::from_bytes(&[7u8; 96]))
}

fn chunker(c: &mut Criterion) {
    let crypto = keyed();
    let ch = Chunker::new(&ChunkerParams::default(), &crypto);
    let data = random(32 * MIB, 1);
    let mut g = c.benchmark_group("chunker");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("keyed_gear_32MiB", |b| {
        b.iter(|| black_box(ch.split(black_box(&data)).len()))
    });
    g.finish();
}

fn hash(c: &mut Criterion) {
    let crypto = keyed();
    let mib = random(MIB, 2);
    let pack = random(16 * MIB, 3);
    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("keyed_blake3_1MiB", |b| {
        b.iter(|| black_box(crypto.blob_id(black_box(&mib))))
    });
    g.throughput(Throughput::Bytes(pack.len() as u64));
    g.bench_function("blake3_pack_id_16MiB", |b| {
        b.iter(|| black_box(Id::hash_of(black_box(&pack))))
    });
    g.finish();
}

fn zstd_stage(c: &mut Criterion) {
    let crypto = keyed();
    let text = compressible(MIB, 4);
    let noise = random(MIB, 5);
    let ratio = zstd::bulk::compress(&text, 3).map(|z| z.len()).unwrap_or(0);
    eprintln!(
        "zstd: compressible input shrinks to {:.1}% at level 3",
        ratio as f64 * 100.0 / text.len() as f64
    );
    let mut g = c.benchmark_group("zstd");
    g.throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("level3_compressible_1MiB", |b| {
        b.iter(|| black_box(zstd::bulk::compress(black_box(&text), 3).map(|v| v.len())))
    });
    g.bench_function("level3_incompressible_1MiB", |b| {
        b.iter(|| black_box(zstd::bulk::compress(black_box(&noise), 3).map(|v| v.len())))
    });
    let id = crypto.blob_id(&noise);
    // What the pipeline does with a non-media chunk of random bytes: a 64 KiB trial, then
    // stores it uncompressed (seal included); compare with encode_never below.
    g.bench_function("encode_try3_incompressible_1MiB", |b| {
        b.iter(|| {
            let e = blob::encode(
                &crypto,
                id,
                BlobType::Data,
                black_box(&noise),
                Compression::Try(3),
            );
            assert!(!e.compressed);
            black_box(e.sealed.len())
        })
    });
    // The compressibility trial alone (64 KiB of random data at level 1), as `blob::encode`
    // runs it (`zstd::bulk::compress`: a new context per call) and with a reused context.
    let sample = &noise[..64 << 10];
    g.throughput(Throughput::Bytes(sample.len() as u64));
    g.bench_function("trial_64KiB_new_context", |b| {
        b.iter(|| black_box(zstd::bulk::compress(black_box(sample), 1).map(|v| v.len())))
    });
    let mut ctx = zstd::bulk::Compressor::new(1).expect("zstd context");
    g.bench_function("reference_trial_64KiB_reused_context", |b| {
        b.iter(|| black_box(ctx.compress(black_box(sample)).map(|v| v.len())))
    });
    g.throughput(Throughput::Bytes(MIB as u64));
    let tid = crypto.blob_id(&text);
    g.bench_function("encode_try3_compressible_1MiB", |b| {
        b.iter(|| {
            let e = blob::encode(
                &crypto,
                tid,
                BlobType::Data,
                black_box(&text),
                Compression::Try(3),
            );
            black_box(e.sealed.len())
        })
    });
    g.finish();
}

fn seal(c: &mut Criterion) {
    let crypto = keyed();
    let data = random(MIB, 6);
    let id = crypto.blob_id(&data);
    let sealed = crypto.seal(&data);
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("xchacha20poly1305_seal_1MiB", |b| {
        b.iter(|| black_box(crypto.seal(black_box(&data)).len()))
    });
    g.bench_function("encode_never_1MiB", |b| {
        b.iter(|| {
            black_box(
                blob::encode(
                    &crypto,
                    id,
                    BlobType::Data,
                    black_box(&data),
                    Compression::Never,
                )
                .sealed
                .len(),
            )
        })
    });
    // Reference, not snapvault code: the portable RustCrypto XChaCha20-Poly1305 in place on
    // a reused buffer, which snapvault used until it moved to ring's ChaCha20-Poly1305 under
    // an HChaCha20 sub-key (same bytes). The gap to `xchacha20poly1305_seal_1MiB` is ring's
    // assembly, less `seal_with`'s allocation and copy.
    {
        use chacha20poly1305::aead::{AeadInPlace, KeyInit};
        use chacha20poly1305::{XChaCha20Poly1305, XNonce};
        let cipher = XChaCha20Poly1305::new(&[9u8; 32].into());
        let mut buf = data.clone();
        let nonce = XNonce::from_slice(&[3u8; 24]);
        g.bench_function("reference_portable_in_place_1MiB", |b| {
            b.iter(|| {
                black_box(
                    cipher
                        .encrypt_in_place_detached(nonce, b"", &mut buf)
                        .is_ok(),
                )
            })
        });
    }
    // What a worker does since 8154a11: the walker copies the chunk into a recycled buffer
    // laid out for sealing in place (nonce room, padding + tag capacity), the worker seals it
    // there. Compare with `encode_never` plus the old `chunk.to_vec()` of the walker.
    let mut spare = Some(Vec::new());
    g.bench_function("encode_in_place_never_1MiB", |b| {
        b.iter(|| {
            let p = PlainBuf::new_in(&crypto, black_box(&data), spare.take().unwrap_or_default());
            let e = blob::encode_in_place(&crypto, id, BlobType::Data, p, Compression::Never);
            let n = e.sealed.len();
            spare = Some(e.sealed);
            black_box(n)
        })
    });
    g.bench_function("xchacha20poly1305_open_1MiB", |b| {
        b.iter(|| black_box(crypto.open(black_box(&sealed), "bench").map(|v| v.len())))
    });
    g.bench_function("decode_verify_1MiB", |b| {
        b.iter(|| {
            black_box(
                blob::decode(&crypto, &id, false, MIB as u32, black_box(&sealed)).map(|v| v.len()),
            )
        })
    });
    // Restore and check open blobs inside the range they read (the copy here stands in for
    // that read, which they do anyway).
    let stored = blob::encode(&crypto, id, BlobType::Data, &data, Compression::Never).sealed;
    let mut work = stored.clone();
    g.bench_function("decode_in_place_verify_1MiB", |b| {
        b.iter(|| {
            work.copy_from_slice(&stored);
            black_box(
                blob::decode_in_place(&crypto, &id, false, MIB as u32, &mut work).map(|v| v.len()),
            )
        })
    });
    g.finish();
}

fn pack(c: &mut Criterion) {
    let crypto = keyed();
    let blobs: Vec<EncodedBlob> = (0..16)
        .map(|i| {
            let d = random(MIB, 100 + i);
            blob::encode(
                &crypto,
                crypto.blob_id(&d),
                BlobType::Data,
                &d,
                Compression::Never,
            )
        })
        .collect();
    let total: usize = blobs.iter().map(|b| b.sealed.len()).sum();
    let mut g = c.benchmark_group("pack");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("writer_add_finish_16MiB", |b| {
        b.iter(|| {
            // As the packer does: one buffer of pack size + header room.
            let mut w = PackWriter::new(16 * MIB + (64 << 10));
            for bl in &blobs {
                w.add(bl);
            }
            let (id, bytes, entries) = w.finish(&crypto);
            black_box((id, bytes.len(), entries.len()))
        })
    });
    // As the packer does since 8154a11: the buffer of the previous pack is reused.
    let mut spare = Some(Vec::with_capacity(16 * MIB + (64 << 10)));
    g.bench_function("writer_recycled_add_finish_16MiB", |b| {
        b.iter(|| {
            let mut w = PackWriter::with_buffer(spare.take().unwrap_or_default(), ALIGN);
            for bl in &blobs {
                w.add(bl);
            }
            let (id, bytes, entries) = w.finish(&crypto);
            let n = (bytes.len(), entries.len());
            spare = Some(bytes);
            black_box((id, n))
        })
    });
    // Reference floor, not snapvault code: the same bytes copied into one reused buffer and
    // hashed. The gap to `writer_add_finish` is the cost of a fresh 16 MiB buffer per pack
    // (page faults and page zeroing).
    let mut buf: Vec<u8> = Vec::with_capacity(16 * MIB + (64 << 10));
    g.bench_function("reference_reused_buffer_16MiB", |b| {
        b.iter(|| {
            buf.clear();
            for bl in &blobs {
                buf.extend_from_slice(&bl.sealed);
            }
            black_box(Id::hash_of(&buf))
        })
    });
    g.finish();
}

fn index(c: &mut Criterion) {
    const BLOBS: usize = 1_000_000;
    const PER_PACK: usize = 16;
    const LOOKUPS: usize = 10_000;
    let mut r = StdRng::seed_from_u64(7);
    let rid = |r: &mut StdRng| {
        let mut b = [0u8; 32];
        r.fill_bytes(&mut b);
        Id(b)
    };
    let packs: Vec<(PackId, Vec<PackEntry>)> = (0..BLOBS / PER_PACK)
        .map(|_| {
            let entries = (0..PER_PACK)
                .map(|j| PackEntry {
                    id: BlobId(rid(&mut r)),
                    typ: BlobType::Data,
                    compressed: false,
                    offset: (j * MIB) as u32,
                    length: MIB as u32,
                    raw_len: MIB as u32 - 40,
                })
                .collect();
            (PackId(rid(&mut r)), entries)
        })
        .collect();
    let build = || {
        let mut idx = Index::new();
        for (id, entries) in &packs {
            idx.add_pack(*id, (PER_PACK * MIB) as u64, entries);
        }
        idx
    };
    let idx = build();
    assert_eq!(idx.blob_count(), BLOBS);
    let hits: Vec<BlobId> = (0..LOOKUPS)
        .map(|_| {
            let (_, e) = &packs[r.gen_range(0..packs.len())];
            e[r.gen_range(0..PER_PACK)].id
        })
        .collect();
    let misses: Vec<BlobId> = (0..LOOKUPS).map(|_| BlobId(rid(&mut r))).collect();
    let mut g = c.benchmark_group("index");
    g.throughput(Throughput::Elements(LOOKUPS as u64));
    g.bench_function("lookup_hit_1M", |b| {
        b.iter(|| hits.iter().filter(|id| idx.get(id).is_some()).count())
    });
    g.bench_function("lookup_miss_1M", |b| {
        b.iter(|| misses.iter().filter(|id| idx.contains(id)).count())
    });
    g.throughput(Throughput::Elements(BLOBS as u64));
    g.sample_size(10);
    g.bench_function("build_1M", |b| {
        b.iter_batched(
            || (),
            |_| black_box(build().blob_count()),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// One core doing all of a first snapshot's per-byte work on photo data: cut, id, known?,
/// seal (media: no zstd), pack (header seal + pack id at each 16 MiB).
fn pipeline(c: &mut Criterion) {
    let crypto = keyed();
    let ch = Chunker::new(&ChunkerParams::default(), &crypto);
    let data = random(32 * MIB, 8);
    let idx = Index::new();
    let mut g = c.benchmark_group("pipeline_1core");
    g.throughput(Throughput::Bytes(data.len() as u64));
    for (name, comp) in [
        ("media_never_32MiB", Compression::Never),
        ("other_try3_32MiB", Compression::Try(3)),
    ] {
        // Buffers recycled as in the real pipeline: chunk buffers come back after the copy
        // into the pack, pack buffers after the pack is "written".
        let mut chunk_buf: Vec<u8> = Vec::new();
        let mut pool: Vec<Vec<u8>> = (0..2)
            .map(|_| Vec::with_capacity(16 * MIB + (64 << 10)))
            .collect();
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut w = PackWriter::with_buffer(pool.pop().unwrap_or_default(), ALIGN);
                let mut packs = 0;
                for chunk in ch.split(&data) {
                    let id = crypto.blob_id(chunk);
                    if idx.contains(&id) {
                        continue;
                    }
                    let p = PlainBuf::new_in(&crypto, chunk, std::mem::take(&mut chunk_buf));
                    let e = blob::encode_in_place(&crypto, id, BlobType::Data, p, comp);
                    if !w.is_empty() && w.len() + e.sealed.len() > 16 * MIB {
                        let full = std::mem::replace(
                            &mut w,
                            PackWriter::with_buffer(pool.pop().unwrap_or_default(), ALIGN),
                        );
                        let bytes = full.finish(&crypto).1;
                        black_box(bytes.len());
                        pool.push(bytes);
                        packs += 1;
                    }
                    w.add(&e);
                    chunk_buf = e.sealed;
                }
                let bytes = w.finish(&crypto).1;
                black_box(bytes.len());
                pool.push(bytes);
                packs + 1
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
}

criterion_group! {
    name = stages;
    config = config();
    targets = chunker, hash, zstd_stage, seal, pack, index, pipeline
}
criterion_main!(stages);
