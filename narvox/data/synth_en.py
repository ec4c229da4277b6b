"""The embedded default corpus: English sentences from Debian's fortunes spoken by Debian's
speech engines (espeak-ng, flite, festival), written as Kaldi data directories.

It stands in for LibriSpeech/LibriTTS on machines that cannot download them. Splits:
`train`; `dev` and `test_seen` (train voices, unseen sentences); `test_unseen_voice` (voices never
in train). No sentence is in two splits. Every step is deterministic given the seed.

Two voice sets (VOICE_SETS): `base`, 20 training voices and 5 unseen ones, which the codec and
the TTS models learn from (a TTS model needs many utterances per voice); and `all`, every English
voice the engines offer, ~700 for training (each of espeak-ng's variants on seven accents, with
speaking rate, pitch and pitch range spread), for recognizers that must hear voices they never
met; its unseen voices are the festival voices and every variant of an accent held out of training.
"""
from __future__ import annotations

import logging
import random
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import soundfile as sf
from tqdm import tqdm

from narvox.data.kaldi import DataDir, read_data_dir, write_data_dir
from narvox.errors import AudioError, NarvoxError
from narvox.text.normalize import normalize

log = logging.getLogger(__name__)

FORTUNE_DIR = Path("/usr/share/games/fortunes")
SAMPLE_RATE = 16000
SIZES = {"tiny": 0.02, "mini": 0.5, "full": 10.0}
MEAN_UTTERANCE_SECONDS = 3.4  # measured on the mini corpus; turns hours into utterance counts
SPLITS = ("train", "dev", "test_seen", "test_unseen_voice")


@dataclass(frozen=True)
class Voice:
    engine: str   # espeak | flite | festival
    name: str     # engine's voice name
    rate: int = 0  # espeak words per minute
    pitch: int = 0  # espeak pitch 0-99
    range: str = ""  # espeak pitch range, an SSML prosody range (x-low .. x-high); "" the voice's own

    @property
    def speaker(self) -> str:
        """Kaldi-safe speaker id (lower case, no spaces). An id that is a prefix of another
        ("...-klatt", "...-klatt2") is followed there by a letter or digit, which sorts after the
        '-' that ends a speaker id inside an utterance id, so utt2spk sorts both ways."""
        short = {"cmu_us_slt_arctic_hts": "slt", "kal_diphone": "kal", "ked_diphone": "ked"}
        name = short.get(self.name, self.name).replace("+", "-").replace("_", "-")
        return f"{self.engine}-{name}".lower().replace(" ", "")

    def script(self, text: str) -> str:
        """What the engine reads: the text, or SSML when the voice sets a pitch range."""
        if self.range:
            return f'<speak><prosody range="{self.range}">{escape(text)}</prosody></speak>\n'
        return text + "\n"

    def command(self, text_file: Path, wav_file: Path) -> list[str]:
        if self.engine == "espeak":
            return ["espeak-ng", "-v", self.name, "-s", str(self.rate), "-p", str(self.pitch),
                    *(["-m"] if self.range else []), "-f", str(text_file), "-w", str(wav_file)]
        if self.engine == "flite":
            return ["flite", "-voice", self.name, "-f", str(text_file), "-o", str(wav_file)]
        return ["text2wave", "-eval", f"(voice_{self.name})", str(text_file), "-o", str(wav_file)]


def _espeak(name: str, i: int) -> Voice:
    # spread speaking rate and pitch deterministically so voices differ beyond their variant
    return Voice("espeak", name, rate=145 + (i * 7) % 40, pitch=35 + (i * 11) % 30)


TRAIN_VOICES = (
    *[_espeak(v, i) for i, v in enumerate([
        "en-us+f1", "en-us+f3", "en-us+m1", "en-us+m3", "en-gb+f2", "en-gb+m2", "en-gb+m4",
        "en-gb-scotland+f4", "en-gb-scotland+m5", "en-gb-x-rp+f5", "en-gb-x-rp+m6", "en-029+f3",
        "en-029+m7", "en-us-nyc+f2", "en-us-nyc+m8", "en-gb-x-gbclan+m1"])],
    Voice("flite", "kal16"), Voice("flite", "slt"), Voice("flite", "rms"), Voice("flite", "awb"),
)
FESTIVAL_VOICES = (Voice("festival", "cmu_us_slt_arctic_hts"), Voice("festival", "kal_diphone"),
                   Voice("festival", "ked_diphone"))
UNSEEN_VOICES = (*FESTIVAL_VOICES, _espeak("en-gb-x-gbcwmd+f1", 16), _espeak("en-gb-x-gbclan+f3", 17))

# espeak-ng's English accents and its voice variants (espeak-ng-data/voices/!v, Debian's
# espeak-ng 1.52), spelled out so the corpus does not change with what a machine has installed
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan")
HELD_OUT_ACCENT = "en-gb-x-gbcwmd"  # West Midlands: its voices are all unseen ones
ESPEAK_VARIANTS = (
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Demonic", "Denis", "Diogo", "Gene", "Gene2",
    "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Mr serious", "Nguyen",
    "RicishayMax", "RicishayMax2", "RicishayMax3", "Storm", "Tweaky", "UniRobot", "adam", "anika",
    "anikaRobot", "announcer", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb", "croak", "david",
    "ed", "edward", "edward2", "f1", "f2", "f3", "f4", "f5", "fast", "grandma", "grandpa", "gustave", "iven",
    "iven2", "iven3", "iven4", "john", "kaukovalta", "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6",
    "linda", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "marcelo", "max", "michel", "miguel", "norbert",
    "pablo", "paul", "pedro", "quincy", "rob", "robert", "robosoft", "robosoft2", "robosoft3", "robosoft4",
    "robosoft5", "robosoft6", "robosoft7", "robosoft8", "sandro", "shelby", "steph", "steph2", "steph3",
    "travis", "victor", "whisper", "whisperf", "zac")
PITCH_RANGES = ("x-low", "low", "medium", "high", "x-high")


def _spread(name: str, i: int) -> Voice:
    """The `all` set's espeak voice number i: rate 120-200 wpm, pitch 20-80, and a pitch range,
    by strides over co-prime cycles (81, 61, 5), so no two of the first 24,705 voices share all three."""
    return Voice("espeak", name, rate=120 + (i * 37) % 81, pitch=20 + (i * 23) % 61,
                 range=PITCH_RANGES[(i * 3) % len(PITCH_RANGES)])


def _espeak_all(accents) -> tuple[Voice, ...]:
    names = [f"{a}+{v}" for a in accents for v in ESPEAK_VARIANTS]
    return tuple(_spread(n, i) for i, n in enumerate(names))


ALL_TRAIN_VOICES = (*_espeak_all(ESPEAK_ACCENTS), *(Voice("flite", v) for v in ("kal", "kal16", "slt", "rms", "awb")))
ALL_UNSEEN_VOICES = (*FESTIVAL_VOICES, *_espeak_all([HELD_OUT_ACCENT]))
VOICE_SETS = {"base": (TRAIN_VOICES, UNSEEN_VOICES), "all": (ALL_TRAIN_VOICES, ALL_UNSEEN_VOICES)}

# a sentence split after these is not a sentence end
NO_SPLIT_AFTER = re.compile(r"\b(Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|Capt|Gen|Lt|Col|Sgt|Rev|Mt|vs|etc|"
                            r"e\.g|i\.e|[A-Z])\.$")
GOOD_SENTENCE = re.compile(r"^[A-Z][A-Za-z0-9 ,.;:'?!$%&-]*[.!?]$")


def fortune_sentences(fortune_dir: Path = FORTUNE_DIR, min_words: int = 4,
                      max_words: int = 20) -> list[str]:
    """Unique sentences of fortune files, sorted; unique by their normalised form."""
    files = sorted(f for f in fortune_dir.iterdir()
                   if f.is_file() and f.suffix not in (".dat", ".u8") and not f.is_symlink())
    if not files:
        raise NarvoxError(f"no fortune files in {fortune_dir}: install Debian's 'fortunes' package")
    seen: dict[str, str] = {}
    for path in files:
        for fortune in path.read_text(encoding="latin-1").split("\n%\n"):
            # drop attributions ("-- Mark Twain") and dialogue speaker tags ("Q:")
            lines = [l.strip() for l in fortune.splitlines() if not re.match(r"^\s*(--|\S+:)", l)]
            pieces = re.split(r"(?<=[.!?])\s+", " ".join(lines))
            sentences: list[str] = []
            for piece in pieces:
                if sentences and NO_SPLIT_AFTER.search(sentences[-1]):
                    sentences[-1] += " " + piece
                else:
                    sentences.append(piece)
            for s in sentences:
                s = " ".join(s.split())
                if (GOOD_SENTENCE.match(s) and min_words <= len(s.split()) <= max_words
                        and not re.search(r"[A-Z]{2,}|[a-z][A-Z]|\.\.", s)):
                    seen.setdefault(normalize(s), s)
    return sorted(seen.values())


@dataclass(frozen=True)
class Job:
    utt: str
    voice: Voice
    raw: str
    text: str
    path: Path


def _is_done(path: Path) -> bool:
    try:
        return path.is_file() and sf.info(str(path)).frames > 0
    except (sf.LibsndfileError, RuntimeError):
        return False


def synthesize(job: Job) -> float:
    """Speak one sentence to 16 kHz mono 16-bit FLAC, gain-normalised and trimmed; return seconds."""
    if not _is_done(job.path):
        job.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="narvox-synth-") as tmp:
            text_file, wav_file = Path(tmp) / "text.txt", Path(tmp) / "raw.wav"
            # speak the normalised text (with its punctuation for prosody), so audio and
            # transcript agree on how numbers and abbreviations are read
            text_file.write_text(job.voice.script(normalize(job.raw, keep_punctuation=True)))
            steps = [job.voice.command(text_file, wav_file),
                     ["sox", str(wav_file), "-b", "16", "-c", "1", str(Path(tmp) / "out.flac"),
                      "rate", "-h", str(SAMPLE_RATE), "gain", "-n", "-1",
                      "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%",
                      "reverse", "pad", "0.1", "0.1"]]
            for cmd in steps:
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0 or (cmd[0] != "sox" and not wav_file.is_file()):
                    raise AudioError(f"utterance {job.utt}: '{' '.join(cmd[:3])} ...' failed "
                                     f"({proc.returncode}): {proc.stderr.strip()[-300:]}")
            shutil.move(str(Path(tmp) / "out.flac"), str(job.path))
    info = sf.info(str(job.path))
    if info.frames == 0:
        raise AudioError(f"utterance {job.utt}: {job.voice.speaker} produced empty audio")
    return info.frames / info.samplerate


def plan(hours: float, seed: int = 0, sentences: list[str] | None = None,
         voices: str = "base") -> dict[str, list[tuple[Voice, str]]]:
    """Which voice (of VOICE_SETS[voices]) speaks which sentence in each split. Deterministic
    given hours, seed and voice set."""
    if voices not in VOICE_SETS:
        raise NarvoxError(f"unknown voice set '{voices}' (one of {sorted(VOICE_SETS)})")
    train_voices, unseen_voices = VOICE_SETS[voices]
    sentences = list(sentences if sentences is not None else fortune_sentences())
    random.Random(seed).shuffle(sentences)
    total = max(8, round(hours * 3600 / MEAN_UTTERANCE_SECONDS))
    n_eval = min(300, max(4, round(total * 0.08)))
    n_train = max(4, total - 3 * n_eval)
    if 3 * n_eval + 1 > len(sentences):
        raise NarvoxError(f"{len(sentences)} sentences are too few for 3 x {n_eval} test sentences")
    splits = {"dev": sentences[:n_eval], "test_seen": sentences[n_eval:2 * n_eval],
              "test_unseen_voice": sentences[2 * n_eval:3 * n_eval]}
    pool = sentences[3 * n_eval:]
    # train re-uses sentences (with other voices) only when the pool is smaller than asked
    splits["train"] = [pool[i % len(pool)] for i in range(n_train)]
    out = {}
    for name in SPLITS:
        speakers = unseen_voices if name == "test_unseen_voice" else train_voices
        offset = random.Random(f"{seed}-{name}").randrange(len(speakers))
        out[name] = [(speakers[(offset + i) % len(speakers)], s) for i, s in enumerate(splits[name])]
    return out


def generate(out_dir: str | Path, hours: float = SIZES["mini"], seed: int = 0, nj: int = 2,
             voices: str = "base") -> dict[str, DataDir]:
    """Synthesise the corpus into `out_dir/{wav,<split>}`; finished audio is reused on re-runs."""
    out_dir = Path(out_dir).resolve()
    assignments = plan(hours, seed, voices=voices)
    jobs: dict[str, list[Job]] = {}
    for split, pairs in assignments.items():
        counts: dict[str, int] = {}
        jobs[split] = []
        for voice, raw in pairs:
            n = counts[voice.speaker] = counts.get(voice.speaker, 0) + 1
            utt = f"{voice.speaker}-{split[:5].replace('_', '')}{n:05d}"
            jobs[split].append(Job(utt, voice, raw, normalize(raw),
                                   out_dir / "wav" / voice.speaker / f"{utt}.flac"))
    every = [j for split in SPLITS for j in jobs[split]]
    # festival is ~10x slower than the rest: start it first so it doesn't trail at the end
    every.sort(key=lambda j: j.voice.engine != "festival")
    with ThreadPoolExecutor(max(1, nj)) as pool:
        seconds = dict(zip((j.utt for j in every),
                           tqdm(pool.map(synthesize, every), total=len(every), desc="synthesising",
                                unit="utt")))
    result = {}
    for split in SPLITS:
        js = jobs[split]
        data = DataDir(wav_scp={j.utt: str(j.path) for j in js}, text={j.utt: j.text for j in js},
                       utt2spk={j.utt: j.voice.speaker for j in js},
                       utt2dur={j.utt: seconds[j.utt] for j in js},
                       extra={"text_raw": {j.utt: j.raw for j in js}})
        write_data_dir(data, out_dir / split)
        result[split] = data
    log.info("corpus written to %s", out_dir)
    return result


def summarize(corpus_dir: str | Path) -> list[dict]:
    """Per split: utterances, hours, voices, distinct sentences."""
    rows = []
    for split in SPLITS:
        data = read_data_dir(Path(corpus_dir) / split)
        rows.append({"split": split, "utterances": len(data),
                     "hours": data.total_seconds() / 3600, "voices": len(data.speakers),
                     "sentences": len(set(data.text.values()))})
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"| {'split':<18} | {'utterances':>10} | {'hours':>6} | {'voices':>6} | {'sentences':>9} |"
    lines = [head, "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"]
    for r in rows:
        lines.append(f"| {r['split']:<18} | {r['utterances']:>10} | {r['hours']:>6.2f} | "
                     f"{r['voices']:>6} | {r['sentences']:>9} |")
    return "\n".join(lines)
