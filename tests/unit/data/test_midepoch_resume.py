"""Where a resumed run continues: read from Lightning's loop state; the sampler's skip."""

from __future__ import annotations

from simclr.data.epochs import EpochShuffleSampler
from simclr.training.resume import ResumePoint, _resume_point


def _ckpt(
    started: int, processed: int, batches: int, epoch: int, step: int, last: bool = False
) -> dict:
    return {
        "epoch": epoch,
        "global_step": step,
        "loops": {
            "fit_loop": {
                "epoch_progress": {"total": {"started": started, "processed": processed}},
                "epoch_loop.batch_progress": {
                    "current": {"completed": batches},
                    "is_last_batch": last,
                },
            }
        },
    }


def test_end_of_epoch_checkpoint_resumes_at_the_next_epoch():
    # Saved in on_train_epoch_end of epoch 1: started 2 epochs, processed 2.
    assert _resume_point(_ckpt(2, 2, 3, epoch=1, step=6)) == ResumePoint(2, 6, 0)


def test_checkpoint_after_the_last_batch_resumes_at_the_next_epoch():
    # Saved at the end of validation after the last batch, before the epoch is processed.
    assert _resume_point(_ckpt(2, 1, 3, epoch=1, step=6, last=True)) == ResumePoint(2, 6, 0)


def test_mid_epoch_checkpoint_resumes_in_its_epoch_after_its_batches():
    # Stopped after batch 2 of epoch 1: started 2 epochs, processed 1.
    assert _resume_point(_ckpt(2, 1, 2, epoch=1, step=5)) == ResumePoint(1, 5, 2)


def test_skipping_sampler_yields_the_rest_of_that_epoch_then_whole_epochs():
    whole = EpochShuffleSampler(10, seed=3, start_epoch=1)
    expected = list(whole)
    resumed = EpochShuffleSampler(10, seed=3, start_epoch=1, skip=4)
    assert len(resumed) == 10  # Lightning's batch count (and the LR schedule) unchanged
    assert list(resumed) == expected[4:]
    assert list(resumed) == expected  # a second pass over epoch 1 is whole again
    resumed.set_epoch(2)
    whole.set_epoch(2)
    assert list(resumed) == list(whole)
    other = EpochShuffleSampler(10, seed=3, start_epoch=0, skip=4)
    other.set_epoch(1)  # the skip belongs to start_epoch only
    assert list(other) == expected
    assert sorted(i for _, i in expected) == list(range(10))
