//! Hot library paths: chunk sealing and opening, key wrapping, armor, audit MACs, and the
//! AEAD itself sealing and opening one chunk in place on one thread (the per-core ceiling
//! of a stream). Run with `cargo bench`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zencrypt_core::crypto::armor::ArmorWriter;
use zencrypt_core::crypto::mac::MacKey;
use zencrypt_core::crypto::stream::{Header, decrypt_body, encrypt_body};
use zencrypt_core::crypto::{Aad, Key32, aead};
use zencrypt_core::ids::{KeyId, KeyVersion};

const MIB: usize = 1024 * 1024;

fn stream(c: &mut Criterion) {
    let plain = vec![0x5au8; 4 * MIB];
    let dek = Key32::random();
    let mut header = Header::new(KeyId(1), KeyVersion(1));
    header.wrapped_dek = vec![0; 61];
    let mut sealed = Vec::with_capacity(plain.len() + 4096);
    encrypt_body(&dek, &header, &mut &plain[..], &mut sealed, &mut |_| {}).unwrap();

    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("seal 4 MiB (64 KiB chunks)", |b| {
        let mut out = Vec::with_capacity(plain.len() + 4096);
        b.iter(|| {
            out.clear();
            encrypt_body(&dek, &header, &mut &plain[..], &mut out, &mut |_| {}).unwrap()
        })
    });
    g.bench_function("open 4 MiB (64 KiB chunks)", |b| {
        let mut out = Vec::with_capacity(plain.len());
        b.iter(|| {
            out.clear();
            decrypt_body(&dek, &header, &mut &sealed[..], &mut out, &mut |_| {}).unwrap()
        })
    });
    g.bench_function("armor 4 MiB", |b| {
        b.iter(|| {
            let mut w = ArmorWriter::new(Vec::with_capacity(6 * MIB));
            std::io::Write::write_all(&mut w, &sealed).unwrap();
            w.finish().unwrap()
        })
    });
    g.finish();
}

/// AES-256-GCM (the crate zencrypt seals with) on one chunk in place, on one thread: 64 KiB
/// (zencrypt's chunk size) and 1 MiB.
fn aead_one_core(c: &mut Criterion) {
    use aes_gcm::aead::{AeadInOut, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce};

    let cipher = Aes256Gcm::new(&[7u8; 32].into());
    let nonce = Nonce::from([1u8; 12]);
    let mut g = c.benchmark_group("aes-256-gcm, one core");
    for size in [64 * 1024, MIB] {
        let label = if size == MIB { "1 MiB" } else { "64 KiB" };
        let mut buf = vec![0x5au8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("seal {label} in place"), |b| {
            b.iter(|| {
                cipher
                    .encrypt_inout_detached(&nonce, b"aad", (&mut buf[..]).into())
                    .unwrap()
            })
        });
        let mut sealed = vec![0x5au8; size];
        let tag = cipher
            .encrypt_inout_detached(&nonce, b"aad", (&mut sealed[..]).into())
            .unwrap();
        let mut work = sealed.clone();
        g.bench_function(format!("open {label} in place (and copy it back)"), |b| {
            b.iter(|| {
                work.copy_from_slice(&sealed);
                cipher
                    .decrypt_inout_detached(&nonce, b"aad", (&mut work[..]).into(), &tag)
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn keys(c: &mut Criterion) {
    let kek = Key32::random();
    let key = Key32::random();
    let aad = Aad::new("bench").int(1).int(2);
    let wrapped = aead::wrap_key(&kek, &aad, &key);
    c.bench_function("wrap a 256-bit key", |b| {
        b.iter(|| aead::wrap_key(&kek, black_box(&aad), &key))
    });
    c.bench_function("unwrap a 256-bit key", |b| {
        b.iter(|| aead::unwrap_key(&kek, black_box(&aad), &wrapped).unwrap())
    });
    let mac = MacKey::new(vec![7; 32]);
    let row = vec![1u8; 160];
    c.bench_function("audit row MAC (160 bytes)", |b| {
        b.iter(|| mac.compute(&[&[0u8; 32], black_box(&row)]))
    });
}

criterion_group!(benches, stream, aead_one_core, keys);
criterion_main!(benches);
