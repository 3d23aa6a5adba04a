//! The hostile-layer suite: every kind of malicious layer is refused with
//! an error naming the entry and the rule, and nothing is written outside
//! the unpack root. Layers are hand-built tar streams (a tar writer would
//! refuse to write most of them), gzip-compressed where it matters.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use flate2::Compression as Level;
use flate2::write::GzEncoder;
use scanfleet_image_fetch::adapters::layer_unpack::Unpacker;
use scanfleet_image_fetch::layer_entry::UnpackLimits;
use scanfleet_image_fetch::manifest::Compression;

/// One raw tar entry: name bytes go straight into the header.
fn entry(out: &mut Vec<u8>, name: &[u8], kind: u8, data: &[u8], link: &[u8], mode: u32) {
    entry_sized(out, name, kind, data, link, mode, data.len() as u64);
}

fn entry_sized(
    out: &mut Vec<u8>,
    name: &[u8],
    kind: u8,
    data: &[u8],
    link: &[u8],
    mode: u32,
    size: u64,
) {
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
    h.as_gnu_mut().unwrap().linkname[..link.len()].copy_from_slice(link);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn end(mut out: Vec<u8>) -> Vec<u8> {
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Level::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A sandbox: `root/` to unpack into, `outside/` that must stay empty.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        Self { dir }
    }
    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }
    fn outside(&self) -> std::path::PathBuf {
        self.dir.path().join("outside")
    }
    /// Nothing but `root` and an empty `outside` in the sandbox.
    fn assert_contained(&self) {
        let mut names: Vec<_> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["outside", "root"]);
        assert_eq!(
            fs::read_dir(self.outside()).unwrap().count(),
            0,
            "outside/ was written"
        );
    }
}

fn unpack(sb: &Sandbox, layers: &[Vec<u8>], limits: UnpackLimits) -> Result<Unpacker, String> {
    let mut u = Unpacker::new(&sb.root(), limits);
    for l in layers {
        u.apply(l.as_slice(), Compression::None)
            .map_err(|e| e.to_string())?;
    }
    Ok(u)
}

fn refused(layers: &[Vec<u8>], want: &str) {
    let sb = Sandbox::new();
    let err = unpack(&sb, layers, UnpackLimits::default())
        .err()
        .unwrap_or_else(|| panic!("expected refusal: {want}"));
    assert_eq!(err, want);
    sb.assert_contained();
}

#[test]
fn path_escapes_are_refused() {
    let mut l = Vec::new();
    entry(&mut l, b"/etc/evil", b'0', b"x", b"", 0o644);
    refused(
        &[end(l)],
        "entry \"/etc/evil\": absolute path; layer paths must be relative to the image root",
    );
    let mut l = Vec::new();
    entry(&mut l, b"a/../../outside/evil", b'0', b"x", b"", 0o644);
    refused(
        &[end(l)],
        "entry \"a/../../outside/evil\": path climbs out of the image root with \"..\"",
    );
}

#[test]
fn symlink_escapes_are_refused() {
    let mut l = Vec::new();
    entry(&mut l, b"etc/up", b'2', b"", b"../../outside", 0o777);
    refused(
        &[end(l)],
        "entry \"etc/up\": symlink target \"../../outside\" climbs above the image root",
    );

    // An absolute symlink is fine as data, but nothing is written through it.
    let sb = Sandbox::new();
    let target = sb.outside();
    let mut l = Vec::new();
    entry(
        &mut l,
        b"esc",
        b'2',
        b"",
        target.as_os_str().as_encoded_bytes(),
        0o777,
    );
    entry(&mut l, b"esc/evil", b'0', b"x", b"", 0o644);
    let err = unpack(&sb, &[end(l)], UnpackLimits::default())
        .err()
        .unwrap();
    assert_eq!(
        err,
        "entry \"esc/evil\": parent \"/esc\" is a symlink; writing through it could escape the image root"
    );
    sb.assert_contained();

    // The same through a symlink left by a lower layer.
    let sb = Sandbox::new();
    let mut l1 = Vec::new();
    entry(
        &mut l1,
        b"lib",
        b'2',
        b"",
        target.as_os_str().as_encoded_bytes(),
        0o777,
    );
    let mut l2 = Vec::new();
    entry(&mut l2, b"lib/.wh.x", b'0', b"", b"", 0o644);
    let err = unpack(&sb, &[end(l1), end(l2)], UnpackLimits::default())
        .err()
        .unwrap();
    assert!(err.contains("parent \"/lib\" is a symlink"), "{err}");
    sb.assert_contained();
}

#[test]
fn hardlink_escapes_are_refused() {
    let mut l = Vec::new();
    entry(&mut l, b"h", b'1', b"", b"../outside/secret", 0o644);
    refused(
        &[end(l)],
        "entry \"h\": hard link target \"../outside/secret\" is outside the image root",
    );
    let mut l = Vec::new();
    entry(&mut l, b"h", b'1', b"", b"/etc/shadow", 0o644);
    refused(
        &[end(l)],
        "entry \"h\": hard link target \"/etc/shadow\" is outside the image root",
    );
    // A hard link to a symlink that points out would link the host file.
    let mut l = Vec::new();
    entry(&mut l, b"s", b'2', b"", b"/etc/shadow", 0o777);
    entry(&mut l, b"h", b'1', b"", b"s", 0o644);
    refused(
        &[end(l)],
        "entry \"h\": hard link target /s is not a regular file unpacked before it",
    );
}

#[test]
fn device_nodes_and_fifos_are_refused() {
    let mut l = Vec::new();
    entry(&mut l, b"dev/sda", b'4', b"", b"", 0o660);
    refused(
        &[end(l)],
        "entry \"dev/sda\": device nodes are refused in image layers",
    );
    let mut l = Vec::new();
    entry(&mut l, b"dev/null", b'3', b"", b"", 0o666);
    refused(
        &[end(l)],
        "entry \"dev/null\": device nodes are refused in image layers",
    );
    let mut l = Vec::new();
    entry(&mut l, b"p", b'6', b"", b"", 0o666);
    refused(&[end(l)], "entry \"p\": FIFOs are refused in image layers");
}

#[test]
fn setuid_is_kept_as_data_not_on_disk() {
    let sb = Sandbox::new();
    let mut l = Vec::new();
    entry(&mut l, b"bin/su", b'0', b"#!", b"", 0o4755);
    entry(&mut l, b"tmp", b'5', b"", b"", 0o1777);
    let u = unpack(&sb, &[end(l)], UnpackLimits::default()).unwrap();
    let on_disk = fs::metadata(sb.root().join("bin/su")).unwrap().mode();
    assert_eq!(on_disk & 0o7777, 0o755, "setuid reached the disk");
    assert_eq!(
        fs::metadata(sb.root().join("tmp")).unwrap().mode() & 0o7777,
        0o777
    );
    let recorded = u.into_recorded();
    assert_eq!(recorded.get(b"/bin/su").unwrap().mode, 0o104_755);
    assert_eq!(recorded.get(b"/tmp").unwrap().mode, 0o041_777);
    sb.assert_contained();
}

#[test]
fn caps_on_entries_and_sizes_hold() {
    let limits = UnpackLimits {
        max_entries: 10,
        max_entry_bytes: 1000,
        ..UnpackLimits::default()
    };
    let mut l = Vec::new();
    for i in 0..11 {
        entry(&mut l, format!("f{i}").as_bytes(), b'0', b"", b"", 0o644);
    }
    let sb = Sandbox::new();
    assert_eq!(
        unpack(&sb, &[end(l)], limits).err().unwrap(),
        "entry \"f10\": more than 10 entries in the image"
    );
    sb.assert_contained();

    // A header that claims more than the cap is refused before its data is read.
    let mut l = Vec::new();
    entry_sized(&mut l, b"big", b'0', b"", b"", 0o644, 1 << 40);
    let sb = Sandbox::new();
    assert_eq!(
        unpack(&sb, &[l], limits).err().unwrap(),
        "entry \"big\": file is 1099511627776 bytes, over the per-entry limit of 1000"
    );
    assert!(!sb.root().join("big").exists());
    sb.assert_contained();

    // A GNU long name of a megabyte is refused without reading it.
    let mut l = Vec::new();
    entry_sized(&mut l, b"././@LongLink", b'L', b"", b"", 0o644, 1 << 20);
    let sb = Sandbox::new();
    assert_eq!(
        unpack(&sb, &[l], UnpackLimits::default()).err().unwrap(),
        "entry \"././@LongLink\": path or link target is 1048576 bytes, over the limit of 4097"
    );
}

#[test]
fn truncated_streams_are_refused() {
    let mut l = Vec::new();
    entry(&mut l, b"etc/passwd", b'0', &[b'r'; 4000], b"", 0o644);
    let l = end(l);
    let cut = &l[..2000];
    let sb = Sandbox::new();
    let err = unpack(&sb, &[cut.to_vec()], UnpackLimits::default())
        .err()
        .unwrap();
    assert!(
        err.starts_with("layer stream is truncated or corrupt"),
        "{err}"
    );
    let gz = gzip(&l);
    let mut u = Unpacker::new(&sb.root(), UnpackLimits::default());
    let err = u
        .apply(&gz[..gz.len() / 2], Compression::Gzip)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("layer stream is truncated or corrupt"),
        "{err}"
    );
    sb.assert_contained();
}

fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// 128 MiB of zeros compresses to about 128 KiB: within caps it is
/// streamed to disk in bounded memory, over them it is refused unread.
#[test]
fn a_gzip_bomb_unpacks_in_bounded_memory_or_is_refused() {
    const BOMB: u64 = 128 << 20;
    let mut enc = GzEncoder::new(Vec::new(), Level::fast());
    let mut header = Vec::new();
    entry_sized(&mut header, b"zeros", b'0', b"", b"", 0o644, BOMB);
    enc.write_all(&header).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..(BOMB >> 20) {
        enc.write_all(&chunk).unwrap();
    }
    enc.write_all(&[0u8; 1024]).unwrap();
    let bomb = enc.finish().unwrap();
    drop(chunk);
    assert!(bomb.len() < 1 << 20, "{} bytes compressed", bomb.len());

    let sb = Sandbox::new();
    let before = peak_rss_kib();
    let mut u = Unpacker::new(&sb.root(), UnpackLimits::default());
    u.apply(bomb.as_slice(), Compression::Gzip).unwrap();
    assert_eq!(fs::metadata(sb.root().join("zeros")).unwrap().len(), BOMB);
    let grew = peak_rss_kib().saturating_sub(before);
    assert!(
        grew < 16 * 1024,
        "peak RSS grew by {grew} KiB while unpacking 128 MiB"
    );

    let sb = Sandbox::new();
    let limits = UnpackLimits {
        max_total_bytes: 64 << 20,
        ..UnpackLimits::default()
    };
    let mut u = Unpacker::new(&sb.root(), limits);
    assert_eq!(
        u.apply(bomb.as_slice(), Compression::Gzip)
            .unwrap_err()
            .to_string(),
        "entry \"zeros\": image unpacks to more than 67108864 bytes"
    );
    assert!(!sb.root().join("zeros").exists());
    sb.assert_contained();
}

#[test]
fn whiteouts_and_opaque_directories_hide_lower_layers() {
    let sb = Sandbox::new();
    let mut l1 = Vec::new();
    for p in ["etc/a", "etc/b", "var/x/y", "var/keep"] {
        entry(&mut l1, p.as_bytes(), b'0', b"1", b"", 0o644);
    }
    let mut l2 = Vec::new();
    entry(&mut l2, b"etc/.wh.a", b'0', b"", b"", 0o644);
    entry(&mut l2, b"var/z", b'0', b"2", b"", 0o644);
    entry(&mut l2, b"var/.wh..wh..opq", b'0', b"", b"", 0o644);
    entry(&mut l2, b"etc/b", b'0', b"22", b"", 0o600);
    let u = unpack(&sb, &[end(l1), end(l2)], UnpackLimits::default()).unwrap();
    let list = |d: &str| {
        let mut v: Vec<_> = fs::read_dir(sb.root().join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(list("etc"), ["b"]);
    assert_eq!(list("var"), ["z"]);
    assert_eq!(fs::read(sb.root().join("etc/b")).unwrap(), b"22");
    let recorded = u.into_recorded();
    assert!(recorded.get(b"/etc/a").is_none());
    assert!(recorded.get(b"/var/x/y").is_none());
    assert_eq!(recorded.get(b"/etc/b").unwrap().mode, 0o100_600);
    sb.assert_contained();
    assert!(!Path::new("/etc/a-never-written").exists());
}

/// The outer archive of `--image-archive` is untrusted too: its member
/// names follow the same rules and its extension records are capped.
#[test]
fn hostile_image_archives_are_refused() {
    use scanfleet_image_fetch::adapters::image_archive::ImageArchive;
    let sb = Sandbox::new();
    let work = sb.root();
    let open = |tar: Vec<u8>| {
        let path = sb.dir.path().join("outside").join("..").join("archive.tar");
        fs::write(&path, tar).unwrap();
        let result = ImageArchive::open(&path, Some(&work), &UnpackLimits::default())
            .err()
            .map(|e| e.to_string());
        fs::remove_file(&path).unwrap();
        result.expect("refused")
    };
    let mut l = Vec::new();
    entry(&mut l, b"../outside/evil", b'0', b"x", b"", 0o644);
    let err = open(end(l));
    assert!(
        err.ends_with("member \"../outside/evil\": path climbs out of the image root with \"..\""),
        "{err}"
    );
    let mut l = Vec::new();
    entry_sized(&mut l, b"././@LongLink", b'L', b"", b"", 0o644, 1 << 30);
    let err = open(l);
    assert!(
        err.ends_with("an extension record of 1073741824 bytes is over the limit of 65536"),
        "{err}"
    );
    let mut l = Vec::new();
    entry(&mut l, b"blobs/x", b'2', b"", b"/etc/passwd", 0o777);
    let err = open(end(l));
    assert!(err.contains("unexpected entry type"), "{err}");
    assert_eq!(
        fs::read_dir(&work).unwrap().count(),
        0,
        "each private copy is removed"
    );
    sb.assert_contained();
}
