"""The training tasks, by the name `python -m narvox.recipes.train --task NAME` takes and every
checkpoint records. An entry is what the shared trainer and averager cannot know of a family: its
Lightning module, its inputs on the command line, how it builds the module and data from them, and
how (averaged) weights become its output directory. A new family adds one entry here.
(Model kinds, the architectures inside a family, are narvox.registry's.)"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytorch_lightning as L

from narvox.recipes import asr_task, codec_task, tts_task
from narvox.recipes.trainer import Task


@dataclass(frozen=True)
class TaskEntry:
    task: type[Task]
    add_arguments: Callable[[argparse._ArgumentGroup], None]
    # (config, exp_dir, **the arguments above) -> the task and its data; may add to the config and
    # write into exp_dir what the output directory will need
    build: Callable[..., tuple[Task, L.LightningDataModule]]
    # (task, exp_dir, out_dir) -> out_dir
    write: Callable[[Task, Path, Path], Path]


TASKS = {e.task.kind: e for e in (
    TaskEntry(asr_task.AsrTask, asr_task.add_arguments, asr_task.build, asr_task.write_model),
    TaskEntry(codec_task.CodecTask, codec_task.add_arguments, codec_task.build, codec_task.write_codec),
    TaskEntry(tts_task.TtsTask, tts_task.add_arguments, tts_task.build, tts_task.write_model),
)}
