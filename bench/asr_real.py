"""Recognizers on real human speech that no narvox model heard in training: the transcribed
recordings in PocketSphinx's own source (the `test/data` of its sdist on PyPI): five prompts of one
speaker reading playing cards (`cards`) and five audiobook sentences from LibriVox (`librivox`).
Each narvox recognizer given, and PocketSphinx with the US English models its wheel ships, scored
by the same normalisation (narvox.eval.wer).

  python bench/asr_real.py --asr ctc paraformer attention:beam attention:rescore

Fetches pocketsphinx's sdist from PyPI once into --cache, unless --data names its test/data.
Ten utterances: a check that a recognizer transcribes real speech at all, not a fine ranking.
Writes bench/results/asr_real.json and .md.
"""
from __future__ import annotations

import argparse
import json
import re
import tarfile
import urllib.request
from pathlib import Path

import narvox
from narvox.eval.tts import PocketSphinxJudge
from narvox.eval.wer import error_rates

SETS = {"cards": "cards/cards.transcription", "librivox": "librivox/transcription"}


def fetch_test_data(cache: Path) -> Path:
    """test/data of the newest pocketsphinx sdist on PyPI, downloaded and unpacked once."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("pocketsphinx-*/test/data"))
    if found:
        return found[-1]
    with urllib.request.urlopen("https://pypi.org/pypi/pocketsphinx/json", timeout=60) as r:
        release = json.load(r)
    url = next(u["url"] for u in release["urls"] if u["packagetype"] == "sdist")
    archive = cache / url.rsplit("/", 1)[-1]
    urllib.request.urlretrieve(url, archive)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if "/test/data/" in m.name and m.isfile()]
        tar.extractall(cache, members=members, filter="data")
    return sorted(cache.glob("pocketsphinx-*/test/data"))[-1]


def read_set(data: Path, name: str) -> list[tuple[Path, str]]:
    """(wav, reference) of a set from its Sphinx transcription file: `<s> words </s> (id)`."""
    transcription = data / SETS[name]
    out = []
    for line in transcription.read_text().splitlines():
        m = re.fullmatch(r"\s*<s>(.*)</s>\s*\((\S+)\)\s*", line)
        if m is None:
            raise ValueError(f"{transcription}: cannot read the line {line!r}")
        out.append((transcription.parent / f"{m.group(2)}.wav", m.group(1).strip()))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--asr", nargs="+", default=["ctc", "paraformer"],
                   help="shipped recognizers by name, bundle or model directories; NAME:METHOD for "
                        "another decoding method than --method (attention:rescore)")
    p.add_argument("--method", default="greedy")
    p.add_argument("--data", type=Path, help="pocketsphinx's test/data (fetched from PyPI when absent)")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "narvox" / "pocketsphinx-sdist")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args(argv)
    data = args.data or fetch_test_data(args.cache)
    sets = {name: read_set(data, name) for name in SETS}
    recognizers = {}
    for spec in args.asr:
        name, _, method = spec.partition(":")
        asr = narvox.ASR.from_pretrained(name, method=method or args.method)
        recognizers[spec] = lambda paths, asr=asr: [t.text for t in asr.transcribe(paths)]
    judge = PocketSphinxJudge()
    recognizers["pocketsphinx"] = lambda paths: [judge.transcribe_one(*_read(p), source=str(p)) for p in paths]
    rows, examples = [], []
    for system, transcribe in recognizers.items():
        refs, hyps = [], []
        for set_name, items in sets.items():
            paths = [str(w) for w, _ in items]
            got = transcribe(paths)
            rates = error_rates([r for _, r in items], got)
            rows.append({"system": system, "set": set_name, "wer": rates.wer, "cer": rates.cer, "utterances": len(items)})
            refs += [r for _, r in items]
            hyps += got
            examples.append({"system": system, "set": set_name, "reference": items[-1][1], "hypothesis": got[-1]})
        rates = error_rates(refs, hyps)
        rows.append({"system": system, "set": "all", "wer": rates.wer, "cer": rates.cer, "utterances": len(refs)})
        print(json.dumps(rows[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "asr_real.json").write_text(json.dumps({"rows": rows, "examples": examples}, indent=2))
    (args.out / "asr_real.md").write_text(markdown(rows, examples))
    print(markdown(rows, examples))


def _read(path: str):
    import soundfile as sf
    samples, rate = sf.read(path, dtype="float32")
    return samples, rate


def markdown(rows: list[dict], examples: list[dict]) -> str:
    systems = list(dict.fromkeys(r["system"] for r in rows))
    sets = list(dict.fromkeys(r["set"] for r in rows))
    by = {(r["system"], r["set"]): r for r in rows}
    lines = ["| system | " + " | ".join(f"{s} WER / CER %" for s in sets) + " |",
             "|---|" + "---|" * len(sets)]
    for system in systems:
        lines.append(f"| {system} | " + " | ".join(
            f"{100 * by[system, s]['wer']:.1f} / {100 * by[system, s]['cer']:.1f}" for s in sets) + " |")
    lines += ["", "The last utterance of each set:", "", "| system | set | reference | hypothesis |", "|---|---|---|---|"]
    lines += [f"| {e['system']} | {e['set']} | {e['reference']} | {e['hypothesis']} |" for e in examples]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
