"""Scorers: lm-eval's acc/acc_norm definitions, and ROUGE/BLEU/chrF equal to the packages' own."""

from __future__ import annotations

import pytest

from harness.backends.base import Generation, Loglikelihood
from harness.scorers.multiple_choice import acc, acc_norm
from harness.scorers.text_match import exact_match
from harness.scorers.text_overlap import bleu, chrf, rouge
from harness.tasks.sample import Sample


def ll(*values):
    return [Loglikelihood(v, False, 1) for v in values]


def test_acc_is_argmax_of_summed_loglikelihood():
    s = Sample("1", "ctx", (" A", " B", " C"), ("x", "y", "z"), gold=1)
    assert acc(s, ll(-3, -1, -2)).values == {"acc": 1.0}
    assert acc(s, ll(-1, -3, -2)).values == {"acc": 0.0}
    # ties go to the first option, as numpy.argmax does in lm-eval
    assert acc(Sample("2", "c", (" A", " B"), gold=0), ll(-1, -1)).values == {"acc": 1.0}


def test_acc_norm_divides_by_option_length():
    # The short option has the higher total; per character, the long one is more likely.
    s = Sample("1", "ctx", (" a cat", " a very long answer"), gold=1)
    out = ll(-4.0, -6.0)
    assert acc(s, out).values == {"acc": 0.0}
    assert acc_norm(s, out).values == {"acc_norm": 1.0}  # -4/5 = -0.8 < -6/18 = -0.33


def test_rouge_bleu_chrf_match_the_packages():
    import sacrebleu
    from rouge_score import rouge_scorer

    ref, hyp = "Our new roast is here with notes of fig", "The new roast is here, notes of fig and cocoa"
    s, g = Sample("1", "p", reference=ref), Generation(hyp, 3, 9, 0.1)
    expected = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True).score(ref, hyp)
    got = rouge(s, g).values
    assert got["rougeL"] == pytest.approx(expected["rougeL"].fmeasure)
    assert got["rouge2"] == pytest.approx(expected["rouge2"].fmeasure)
    assert bleu(s, g).values["bleu"] == pytest.approx(sacrebleu.sentence_bleu(hyp, [ref]).score)
    assert chrf(s, g).values["chrf"] == pytest.approx(sacrebleu.sentence_chrf(hyp, [ref]).score)
    assert rouge(s, Generation(ref, 1, 1, 0)).values["rougeL"] == pytest.approx(1.0)


def test_exact_match():
    s = Sample("1", "p", reference=" yes ")
    assert exact_match(s, Generation("yes", 1, 1, 0)).values == {"exact_match": 1.0}
    assert exact_match(s, Generation("no", 1, 1, 0)).values == {"exact_match": 0.0}
