import pytest
import torch

from spacy_sru_ner.decoder import DecoderBatch, SlotDecoder
from spacy_sru_ner.settings import DecoderSettings


def _decoder(slot_state: bool = False):
    torch.manual_seed(0)
    decoder = SlotDecoder(16, 12, DecoderSettings.defaults(hidden_width=32, half_context=5, slot_state=slot_state))
    with torch.no_grad():  # make attention and decisions non-trivial
        decoder.queries.normal_(0, 0.5)
        decoder.output.bias[1] -= 0.5
        decoder.token_multiplier.fill_(3.0)
    return decoder.eval()


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("slot_state", [False, True])
def test_fast_inference_matches_the_reference_loop(slot_state, compiled):
    """The compiled CPU loop and the batched tensor loop give the reference's steps."""
    decoder = _decoder(slot_state)
    decoder.compiled_cpu_loop = compiled
    batch = DecoderBatch(vectors=torch.randn(6, 30, 16), lengths=torch.tensor([28, 5, 1, 12, 20, 17]))
    reference = decoder._predict_reference(batch)
    # the step cap is 1.5 x the padded length of what is decoded together; compare the
    # sequences that stopped on their own before the smallest cap they can get
    own_stop = [b for b, n in enumerate(reference.n_steps.tolist()) if n < int(1.5 * (int(batch.lengths[b]) + 2))]
    assert len(own_stop) >= 3
    for chunk_size in (64, 2):  # one chunk; chunks of sequences sorted by length
        fast = decoder.forward_predict(batch, chunk_size=chunk_size)
        for b in own_stop:
            n = int(reference.n_steps[b])
            assert int(fast.n_steps[b]) == n
            torch.testing.assert_close(fast.probs[b, :n], reference.probs[b, :n], rtol=1e-5, atol=1e-5)


def test_sequences_decode_independently_of_their_batch():
    decoder = _decoder()
    vectors, lengths = torch.randn(4, 22, 16), torch.tensor([20, 3, 9, 14])
    together = decoder.forward_predict(DecoderBatch(vectors=vectors, lengths=lengths))
    for b in range(4):
        n = int(lengths[b])
        alone = decoder.forward_predict(DecoderBatch(vectors=vectors[b : b + 1, : n + 2], lengths=lengths[b : b + 1]))
        steps = int(alone.n_steps[0])
        assert int(together.n_steps[b]) == steps
        torch.testing.assert_close(together.probs[b, :steps], alone.probs[0, :steps], rtol=1e-5, atol=1e-5)


def test_training_pass_records_one_step_per_gold_row_without_foreign_labels():
    decoder = _decoder().train()
    gold = torch.zeros(2, 5, 12)
    gold[0, [0, 1, 2, 3], [1, 1, 1, 0]] = 1  # SHIFT x3, EOA
    gold[1, [0, 1, 2], [1, 1, 0]] = 1
    out = decoder.forward_train(
        DecoderBatch(vectors=torch.randn(2, 5, 16), lengths=torch.tensor([3, 2]), gold=gold, n_rows=torch.tensor([4, 3]))
    )
    assert out.logits.shape == (2, 4, 12)
    assert out.active.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert out.cursor.tolist() == [[0, 1, 2, 3], [0, 1, 2, 2]]
    assert not out.delay.any()


@pytest.mark.parametrize("slot_state", [False, True])
def test_numpy_inference_matches_the_torch_loop(slot_state):
    """predict_numpy (numpy tables, compiled loop, chunks by length) gives the
    steps of forward_predict's compiled loop on the same padded batch."""
    decoder = _decoder(slot_state)
    lengths = torch.tensor([28, 5, 1, 12, 20, 17])
    vectors = torch.randn(6, 30, 16)
    torch_out = decoder.forward_predict(DecoderBatch(vectors=vectors, lengths=lengths))
    for chunk_size in (64, 2):
        probs = decoder.predict_numpy(vectors.numpy(), lengths.numpy(), chunk_size=chunk_size)
        for b, p in enumerate(probs):
            n = int(torch_out.n_steps[b])
            if chunk_size == 2 and n >= int(1.5 * (int(lengths[b]) + 2)):
                continue  # stopped by the step cap, which depends on the chunk's padding
            assert p.shape == (n, 12)
            torch.testing.assert_close(torch.from_numpy(p), torch_out.probs[b, :n], rtol=1e-5, atol=1e-5)
