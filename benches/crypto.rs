//! Hot library paths: chunk sealing and opening, key wrapping, armor, audit MACs.
//! Run with `cargo bench`.

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

criterion_group!(benches, stream, keys);
criterion_main!(benches);
