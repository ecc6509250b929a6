//! The `train` binary under faults: reproducibility, Ctrl-C and resume, bad paths, and kill -9.
//!
//! Each test trains a small model on the first 512 digits; it fails when `data/digits` is missing (`make data`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vae_explorer::core::format::{self, ModelFile};

mod common;
use common::dir_entries;

const TRAIN: &str = env!("CARGO_BIN_EXE_train");

/// Fails the test with a clear message when the digits are missing.
fn require_data() {
    assert!(
        Path::new("data/digits/0.json").exists(),
        "data/digits is missing: run `make data`"
    );
}

/// The small, fast training run every test starts from.
fn command(out: &Path, extra: &[&str]) -> Command {
    command_on(out, 512, extra)
}

/// The same run on the first `limit` training images.
fn command_on(out: &Path, limit: usize, extra: &[&str]) -> Command {
    let mut cmd = Command::new(TRAIN);
    cmd.args(["--dataset", "digits", "--hidden", "32", "--limit"])
        .arg(limit.to_string())
        .args(["--atlas", "50", "--iw-samples", "0", "--quiet", "--out"])
        .arg(out)
        .args(extra)
        .env("RAYON_NUM_THREADS", "2");
    cmd
}

fn run(out: &Path, extra: &[&str]) -> Output {
    let output = command(out, extra).output().unwrap();
    assert!(
        output.status.success(),
        "train {extra:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn spawn(out: &Path, extra: &[&str]) -> Child {
    command(out, extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn load(path: &Path) -> ModelFile {
    format::load(&std::fs::read(path).unwrap()).unwrap()
}

/// Every weight of a model file, by name.
fn tensors(file: &ModelFile) -> Vec<(String, Vec<f32>)> {
    file.vae
        .to_tensors()
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1().unwrap()))
        .collect()
}

fn ckpt(out: &Path) -> PathBuf {
    PathBuf::from(format!("{}.ckpt", out.display()))
}

/// Waits until `path` exists; false after `timeout`.
fn wait_for(path: &Path, timeout: Duration) -> bool {
    let start = Instant::now();
    while !path.exists() {
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// The training state a checkpoint records, checked through the same loader `--resume` uses.
fn checkpoint_progress(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    let parts = format::load_parts(&bytes, Some("optimizer.")).unwrap();
    // One moment per trainer variable: weight and bias of each dense layer, mu and logvar fused.
    let c = &parts.file.vae.config;
    let vars = 2 * (c.encoder_hidden.len() + 1 + c.decoder_hidden.len() + 1);
    for kind in ["m", "v"] {
        for i in 0..vars {
            assert!(
                parts.extras.contains_key(&format!("optimizer.{kind}.{i}")),
                "checkpoint lacks optimizer.{kind}.{i}"
            );
        }
    }
    assert_eq!(parts.extras.len(), 2 * vars);
    let state: serde_json::Value = serde_json::from_str(&parts.raw_metadata["checkpoint"]).unwrap();
    state["progress"].clone()
}

#[test]
fn same_seed_gives_identical_tensors() {
    require_data();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a.safetensors"),
        dir.path().join("b.safetensors"),
        dir.path().join("c.safetensors"),
    );
    let args = ["--epochs", "3", "--seed", "5"];
    let (out_a, out_b) = (run(&a, &args), run(&b, &args));
    let (fa, fb) = (load(&a), load(&b));
    assert_eq!(tensors(&fa), tensors(&fb));
    assert_eq!(fa.atlas, fb.atlas);
    assert_eq!(fa.meta.metrics, fb.meta.metrics);
    assert_eq!(out_a.stdout.len(), out_b.stdout.len());
    // The files differ only in the provenance: wall-clock seconds and the command (its --out path).
    let (ta, tb) = (
        fa.meta.training.clone().unwrap(),
        fb.meta.training.clone().unwrap(),
    );
    assert_eq!((ta.seed, ta.epochs), (tb.seed, tb.epochs));
    let mut fb = fb;
    fb.meta.training = Some(ta);
    assert_eq!(format::save(&fa).unwrap(), format::save(&fb).unwrap());
    assert_eq!(
        std::fs::read(dir.path().join("a.loss.svg")).unwrap(),
        std::fs::read(dir.path().join("b.loss.svg")).unwrap()
    );
    let bytes_equal = std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap();
    println!("same seed: tensors identical; raw files byte-identical: {bytes_equal}");
    // The seed matters.
    run(&c, &["--epochs", "3", "--seed", "6"]);
    assert_ne!(tensors(&load(&c)), tensors(&load(&a)));
    assert!(
        !ckpt(&a).exists(),
        "the checkpoint is removed after a finished run"
    );
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_resume_matches_an_uninterrupted_run() {
    require_data();
    let dir = tempfile::tempdir().unwrap();
    let (reference, resumed) = (
        dir.path().join("reference.safetensors"),
        dir.path().join("resumed.safetensors"),
    );
    // 40 epochs of 32 steps: Ctrl-C, sent once the trainer prints its first epoch's line, lands in
    // the second epoch, 39 epochs before the end, however slow the machine is.
    let args = ["--epochs", "40", "--batch", "16", "--seed", "9"];
    let mut child = command(&resumed, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let uninterrupted = spawn(&reference, &args);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("epoch   1 "), "first line: {first:?}");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "stderr: {stderr}");
    assert!(stderr.contains("interrupted: checkpoint saved"), "{stderr}");
    assert!(
        !resumed.exists(),
        "an interrupted run wrote the weights file"
    );
    let progress = checkpoint_progress(&ckpt(&resumed));
    let step = progress["step"].as_u64().unwrap();
    println!("interrupted at {progress}");
    assert!(step > 0 && step < 40 * 32, "{progress}");

    let output = command(&resumed, &[&args[..], &["--resume"]].concat())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "resume failed: {stderr}");
    assert!(stderr.contains(&format!("(step {step})")), "{stderr}");
    assert!(!ckpt(&resumed).exists());

    let output = uninterrupted.wait_with_output().unwrap();
    assert!(output.status.success());
    let (r, u) = (load(&resumed), load(&reference));
    assert_eq!(tensors(&r), tensors(&u), "resumed weights differ");
    assert_eq!(r.atlas, u.atlas);
    assert_eq!(r.meta.metrics, u.meta.metrics);
    assert_eq!(r.meta.latent_mean, u.meta.latent_mean);
    assert_eq!(r.meta.latent_std, u.meta.latent_std);
}

/// Runs the trainer expecting a failure before any training, with `needles` in its error.
fn assert_fails_early(out: &Path, extra: &[&str], needles: &[&str]) {
    // The trainer prints a line per epoch on stdout: none means that nothing was trained.
    let output = command(out, &[&["--epochs", "300"], extra].concat())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{stderr:?} lacks {needle:?}");
    }
    assert!(stderr.trim().lines().count() <= 2, "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "it trained: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(!out.exists() && !ckpt(out).exists());
}

#[test]
fn unwritable_output_fails_before_training() {
    require_data();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/folder/out.safetensors");
    assert_fails_early(
        &missing,
        &[],
        &["output folder", "no/such/folder", "does not exist"],
    );
    assert!(!dir.path().join("no").exists());
    assert_fails_early(
        Path::new("/proc/x/y.safetensors"),
        &[],
        &["output folder /proc/x does not exist"],
    );
    assert_fails_early(
        Path::new("/proc/y.safetensors"),
        &[],
        &["cannot write to output folder /proc"],
    );
    assert!(dir_entries(dir.path()).is_empty());
}

#[test]
fn missing_data_fails_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let nodata = dir.path().join("nodata");
    assert_fails_early(
        &out,
        &["--data", nodata.to_str().unwrap()],
        &["cannot read the digits dataset from", "nodata", "make data"],
    );
    assert!(dir_entries(dir.path()).is_empty());
}

#[test]
fn kill_9_leaves_the_existing_weights_file_and_checkpoint_intact() {
    require_data();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.safetensors");
    run(&out, &["--epochs", "1"]);
    let before = std::fs::read(&out).unwrap();
    // Kill at several moments, some of which fall inside a checkpoint write.
    for delay_ms in [0, 30, 100] {
        let mut child = spawn(&out, &["--epochs", "1000", "--seed", "2"]);
        assert!(wait_for(&ckpt(&out), Duration::from_secs(20)));
        std::thread::sleep(Duration::from_millis(delay_ms));
        assert!(child.try_wait().unwrap().is_none(), "training ended early");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), before, "weights file changed");
        load(&out);
        let progress = checkpoint_progress(&ckpt(&out));
        let extra: Vec<String> = dir_entries(dir.path())
            .into_iter()
            .filter(|n| {
                ![
                    "model.safetensors",
                    "model.safetensors.ckpt",
                    "model.loss.svg",
                ]
                .contains(&n.as_str())
            })
            .collect();
        println!("killed after {delay_ms} ms at {progress}; left behind: {extra:?}");
        std::fs::remove_file(ckpt(&out)).unwrap();
    }
}

#[test]
fn output_path_that_is_a_folder_fails_before_training() {
    require_data();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("models.safetensors");
    std::fs::create_dir(&folder).unwrap();
    let output = command(&folder, &["--epochs", "300"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.starts_with("error: --out ") && stderr.contains("is a folder; give a file path"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "it trained");
    assert!(dir_entries(&folder).is_empty());
    assert_eq!(dir_entries(dir.path()), ["models.safetensors"]);
}

/// Trains until the first checkpoint exists, then interrupts with Ctrl-C.
fn interrupted_checkpoint(out: &Path, extra: &[&str]) {
    let mut child = spawn(out, extra);
    assert!(wait_for(&ckpt(out), Duration::from_secs(20)));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(child.wait().unwrap().code(), Some(130));
}

#[test]
fn resume_with_other_data_is_refused() {
    require_data();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.safetensors");
    let args = ["--epochs", "500", "--batch", "16", "--seed", "3"];
    interrupted_checkpoint(&out, &args);
    let saved = std::fs::read(ckpt(&out)).unwrap();

    let refused = |limit: usize, extra: &[&str], needles: &[&str]| {
        let output = command_on(&out, limit, &[&args[..], &["--resume"], extra].concat())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{stderr:?} lacks {needle:?}");
        }
        assert!(output.stdout.is_empty(), "it trained");
        assert_eq!(
            std::fs::read(ckpt(&out)).unwrap(),
            saved,
            "checkpoint changed"
        );
        assert!(!out.exists());
    };
    // Fewer images.
    refused(
        256,
        &[],
        &[
            "checkpoint was trained on 512 images from data/digits (--limit 512",
            "this run reads 256 images from data/digits (--limit 256",
            "same --data and --limit",
        ],
    );

    // The same number of images, one pixel different.
    let other = dir.path().join("digits");
    std::fs::create_dir(&other).unwrap();
    for d in 0..10 {
        let name = format!("{d}.json");
        std::fs::copy(Path::new("data/digits").join(&name), other.join(&name)).unwrap();
    }
    let first = other.join("0.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&first).unwrap()).unwrap();
    let pixel = json["data"][300].as_f64().unwrap();
    json["data"][300] = serde_json::json!(if pixel > 0.5 { 0.0 } else { 1.0 });
    std::fs::write(&first, serde_json::to_vec(&json).unwrap()).unwrap();
    refused(
        512,
        &["--data", other.to_str().unwrap()],
        &[
            "checkpoint was trained on 512 images",
            "fingerprint",
            "this run reads 512 images from",
        ],
    );
}

#[test]
fn kill_9_while_the_final_weights_are_written_keeps_the_previous_file() {
    require_data();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.safetensors");
    run(&out, &["--epochs", "1"]);
    let before = std::fs::read(&out).unwrap();
    // A wide model (784-2048-8) makes the final file about 13 MB, so that its write takes long enough to hit.
    let spawn_wide = || {
        Command::new(TRAIN)
            .args(["--dataset", "digits", "--limit", "512", "--hidden", "2048"])
            .args([
                "--epochs",
                "1",
                "--seed",
                "4",
                "--atlas",
                "50",
                "--iw-samples",
                "0",
            ])
            .args(["--quiet", "--out"])
            .arg(&out)
            .env("RAYON_NUM_THREADS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut caught_mid_write = 0;
    for attempt in 0..5 {
        let mut child = spawn_wide();
        let tmp = dir
            .path()
            .join(format!(".model.safetensors.{}.tmp", child.id()));
        let start = Instant::now();
        while !tmp.exists() && child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no write after 60 s"
            );
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let after = std::fs::read(&out).unwrap();
        // Either the old file, whole, or the new one, whole: never a mix or a cut.
        let file = load(&out);
        if after == before {
            caught_mid_write += 1;
            println!("attempt {attempt}: killed mid-write; the previous file is intact");
        } else {
            assert_eq!(file.meta.encoder_hidden, [2048]);
            println!("attempt {attempt}: killed after the rename; the new file is complete");
            std::fs::write(&out, &before).unwrap();
        }
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(ckpt(&out));
        if caught_mid_write >= 2 {
            break;
        }
    }
    assert!(caught_mid_write > 0, "no kill landed inside the write");
}
