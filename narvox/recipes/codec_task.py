"""The codec training task: the Lightning module and data module that train the narvox codec
(EnCodec's recipe, scaled down), and how trained weights become a codec directory.

Generator loss: multi-scale mel + time-domain L1 + commitment, plus (with a `teacher`: an ASR
model directory) the cosine distance of codebook 1's projected entries to the recognizer's frame
features; from `adversarial_from` steps on, also the MS-STFT discriminator's hinge loss and
feature matching. Starting the GAN late lets the autoencoder learn to reconstruct first, which is
most of what a few CPU-hours can buy. (The discriminator is idle until then, so DDP needs
`strategy: ddp_find_unused_parameters_true`.)

Checkpoints are ranked by STOI on fixed validation crops (the start of the first `valid_utts`
dev utterances), the quality the codec is judged by, rather than by a training loss.
"""
from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import pytorch_lightning as L
import torch
import torch.nn.functional as F
from encodec.msstftd import MultiScaleSTFTDiscriminator
from encodec.quantization.core_vq import laplace_smoothing
from torch.utils.data import DataLoader, Dataset

from narvox.codecs.losses import MultiScaleMelLoss, discriminator_hinge, feature_matching, generator_hinge
from narvox.codecs.model import CodecConfig, CodecModel
from narvox.codecs.narvox_codec import save_codec_dir
from narvox.codecs.teacher import RecognizerFeatures
from narvox.data.kaldi import read_data_dir
from narvox.eval.codec import stoi
from narvox.recipes.trainer import TimedTask, warmup_then_decay


class AudioCrops(Dataset):
    """Fixed-length crops of a data directory's audio: random for training, the start of each
    utterance for validation. Short utterances are zero-padded."""

    def __init__(self, data_dir: str, sample_rate: int, seconds: float, random_crop: bool,
                 max_utts: int | None = None):
        self.data = read_data_dir(data_dir)
        self.utts = self.data.utt_ids[:max_utts]
        self.sample_rate = sample_rate
        self.length = int(seconds * sample_rate)
        self.random_crop = random_crop

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> torch.Tensor:
        wav, _ = self.data.load_audio(self.utts[i], self.sample_rate)
        if len(wav) > self.length:
            start = random.randint(0, len(wav) - self.length) if self.random_crop else 0
            wav = wav[start:start + self.length]
        return torch.from_numpy(np.pad(wav, (0, self.length - len(wav))))


class WithTeacher:
    """Batches crops and, with a teacher, adds its features at the codec's frame rate: computed in
    the data loader's worker, so the recognizer runs beside training instead of inside its step."""

    def __init__(self, teacher: RecognizerFeatures | None, hop_length: int):
        self.teacher, self.hop_length = teacher, hop_length

    def __call__(self, crops: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        wav = torch.stack(crops)
        batch = {"wav": wav}
        if self.teacher is not None:
            torch.set_num_threads(1)  # the worker's share of the machine; training has the rest
            frames = -(-wav.size(1) // self.hop_length)
            batch["semantic"] = self.teacher(wav.numpy(), frames)
        return batch


class CodecDataModule(L.LightningDataModule):
    def __init__(self, train_dir: str, valid_dir: str, sample_rate: int, hop_length: int,
                 teacher: RecognizerFeatures | None = None, segment_seconds: float = 1.0,
                 batch_size: int = 16, valid_seconds: float = 3.0, valid_utts: int = 64, num_workers: int = 1):
        super().__init__()
        self.train = AudioCrops(train_dir, sample_rate, segment_seconds, random_crop=True)
        self.valid = AudioCrops(valid_dir, sample_rate, valid_seconds, random_crop=False, max_utts=valid_utts)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.collate = WithTeacher(teacher, hop_length)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True, drop_last=True,
                          collate_fn=self.collate, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.valid, batch_size=self.batch_size, collate_fn=self.collate, num_workers=0)


class CodecTask(TimedTask):
    kind = "codec"
    monitor = "val_stoi"
    mode = "max"

    def __init__(self, model: dict, loss: dict | None = None, optim: dict | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False  # generator and discriminator take turns
        self.model = CodecModel(CodecConfig(**model))
        self.loss_cfg = {"mel": 1.0, "time": 0.1, "commit": 1.0, "semantic": 1.0, "adversarial": 1.0,
                         "feature": 2.0, "adversarial_from": 0, "quantizer_from": 0, "quantizer_dropout": 0.5,
                         "disc_filters": 16, **(loss or {})}
        self.optim_cfg = {"lr": 5e-4, "disc_lr": 2e-4, "warmup_steps": 200, "max_steps": 10000,
                          "final_lr_ratio": 0.1, "grad_clip": 10.0, **(optim or {})}
        self.mel_loss = MultiScaleMelLoss(self.model.config.sample_rate)
        n_ffts = [1024, 512, 256]
        self.discriminator = MultiScaleSTFTDiscriminator(
            filters=self.loss_cfg["disc_filters"], n_ffts=n_ffts, hop_lengths=[n // 4 for n in n_ffts],
            win_lengths=n_ffts)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # generator updates; in checkpoints

    def _depth(self) -> int:
        """0 (no quantizer) for the first `quantizer_from` steps, so the codebooks are k-means
        initialised on a latent the autoencoder has learned, not on a fresh encoder's, which hardly
        depends on its input (the collapse this guards against, with CodecConfig.encoder_bias,
        which is what cured it: codebook 1 on 1 code from step 25, validation STOI stuck at 0.48).
        After it, quantizer dropout: half the batches use a random number of codebooks. Drawn from the
        step count, which every DDP rank holds alike: a codebook's first use and its dead-code
        expiry broadcast to all ranks, so all must run the same codebooks (the global `random`
        differs between ranks, whose random crops of different utterances consume it unevenly)."""
        n = self.model.config.n_codebooks
        if self.steps < self.loss_cfg["quantizer_from"]:
            return 0
        rng = random.Random(int(self.steps))
        return rng.randint(1, n) if rng.random() < self.loss_cfg["quantizer_dropout"] else n

    @torch.no_grad()
    def _average_codebooks(self, depth: int) -> None:
        """Under DDP, averages the EMA statistics of the codebooks this step updated over the ranks.

        encodec's codebooks update them from each rank's own batch, and at the next step decide
        from them which codes expire, then broadcast the replacements: a rank that decides
        otherwise skips a collective the others run, and gloo aborts. DDP copies rank 0's buffers
        to the others before a forward pass, but not before the first one after a validation (a
        no-grad pass turns that off). Averaging keeps every rank's codebooks equal, and lets them
        learn from every rank's batch instead of rank 0's only."""
        world = self.trainer.world_size
        if world == 1:
            return
        for layer in self.model.quantizer.vq.layers[:depth]:
            book = layer._codebook
            for stat in (book.cluster_size, book.embed_avg):
                torch.distributed.all_reduce(stat)
                stat /= world
            # the codebook from its statistics, as encodec's EuclideanCodebook.forward computes it
            smoothed = laplace_smoothing(book.cluster_size, book.codebook_size, book.epsilon)
            book.embed.copy_(book.embed_avg / (smoothed * book.cluster_size.sum())[:, None])

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        w = self.loss_cfg
        wav = batch["wav"]
        depth = self._depth()
        recon, commit, _, semantic = self.model(wav, depth)
        self._average_codebooks(depth)
        losses = {"mel": self.mel_loss(recon, wav), "time": F.l1_loss(recon, wav), "commit": commit}
        if semantic is not None:
            losses["semantic"] = semantic_distance(semantic, batch["semantic"])
        if self.steps >= w["adversarial_from"]:
            self.toggle_optimizer(opt_d)
            real_logits, _ = self.discriminator(wav[:, None])
            fake_logits, _ = self.discriminator(recon.detach()[:, None])
            d_loss = discriminator_hinge(real_logits, fake_logits)
            opt_d.zero_grad()
            self.manual_backward(d_loss)
            opt_d.step()
            self.untoggle_optimizer(opt_d)
            self.log("train_disc", d_loss, prog_bar=True)
            self.toggle_optimizer(opt_g)
            fake_logits, fake_maps = self.discriminator(recon[:, None])
            with torch.no_grad():
                _, real_maps = self.discriminator(wav[:, None])
            losses["adversarial"] = generator_hinge(fake_logits)
            losses["feature"] = feature_matching(real_maps, fake_maps)
        loss = sum(w[name] * value for name, value in losses.items())
        opt_g.zero_grad()
        self.manual_backward(loss)
        self.clip_gradients(opt_g, gradient_clip_val=self.optim_cfg["grad_clip"], gradient_clip_algorithm="norm")
        opt_g.step()
        sched_g, sched_d = self.lr_schedulers()
        sched_g.step()
        if self.steps >= w["adversarial_from"]:
            self.untoggle_optimizer(opt_g)
            sched_d.step()  # the discriminator's warm-up starts with the GAN
        self.steps += 1
        if self.steps >= self.optim_cfg["max_steps"]:
            # counted here: Lightning's global_step counts both optimizers' steps
            self.trainer.should_stop = True
        self.log("train_loss", loss, prog_bar=True)
        for name, value in losses.items():
            self.log(f"train_{name}", value)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        wav = batch["wav"]
        n = self.model.config.n_codebooks
        log = dict(sync_dist=True, batch_size=wav.size(0))
        for depth in sorted({n, max(1, n // 2)}):
            recon, _, _, semantic = self.model(wav, depth)
            mel = self.mel_loss(recon, wav)
            score = np.mean([stoi(r, e, self.model.config.sample_rate)
                             for r, e in zip(wav.cpu().numpy(), recon.float().cpu().numpy())])
            self.log(f"val_mel_q{depth}", mel, **log)
            self.log(f"val_stoi_q{depth}", score, **log)
            if depth == n:
                self.log("val_loss", mel, **log)
                self.log("val_stoi", score, prog_bar=True, **log)
        if semantic is not None:
            self.log("val_semantic", semantic_distance(semantic, batch["semantic"]), **log)
        self.log_train_minutes(**log)

    def _schedule(self, step: int) -> float:
        o = self.optim_cfg
        return warmup_then_decay(step, o["warmup_steps"], o["max_steps"], o["final_lr_ratio"])

    def configure_optimizers(self):
        o = self.optim_cfg
        opt_g = torch.optim.AdamW(self.model.parameters(), lr=o["lr"], betas=(0.8, 0.99), weight_decay=0.0)
        opt_d = torch.optim.AdamW(self.discriminator.parameters(), lr=o["disc_lr"], betas=(0.8, 0.99),
                                  weight_decay=0.0)
        scheds = [torch.optim.lr_scheduler.LambdaLR(opt, self._schedule) for opt in (opt_g, opt_d)]
        return [opt_g, opt_d], scheds


def semantic_distance(projected: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity per frame, averaged: [B, C, F] each."""
    return 1 - F.cosine_similarity(projected, teacher, dim=1).mean()


def add_arguments(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--train", required=True, help="Kaldi data directory of the training audio")
    p.add_argument("--valid", required=True, help="Kaldi data directory of the validation audio")


def build(config: dict, exp_dir: Path, train: str, valid: str) -> tuple[CodecTask, CodecDataModule]:
    """`config["teacher"]`, an ASR model directory, turns on distillation; the codec's projection
    takes its width from the teacher."""
    teacher = RecognizerFeatures(config["teacher"]) if config.get("teacher") else None
    model = {**config["model"], "semantic_dim": teacher.dim if teacher else 0}
    task = CodecTask(model, config.get("loss"), config.get("optim"))
    c = task.model.config
    return task, CodecDataModule(train, valid, c.sample_rate, c.hop_length, teacher, **config.get("data", {}))


def write_codec(task: CodecTask, exp_dir: Path, out_dir: Path) -> Path:
    """A codec directory (codec.yaml + inference weights) of the task's weights."""
    return save_codec_dir(task.model, out_dir)
