"""The degradation recogniser: which degradation (and which noise level) an image has, for blind restoration.

DFPIR needs the degradation's prompt at test time; this small network predicts the degradation id
(a row of the prompt table, docs/protocol.md section 2) from the degraded image alone, so its prompt code can be
used. It does not change DFPIR.

Design: physically motivated image statistics (:func:`degradation_statistics`) plus a small CNN
on the image's locally normalised detail (:func:`local_detail`), both pooled over the whole image,
feed an MLP:

- noise level: the local standard deviation of a high-pass residual whose gain for white noise is 1
  (Immerkaer's 3x3 operator), in 8x8 blocks, at full and half resolution; its low quantiles over
  the blocks estimate sigma in the flattest regions (texture only raises them; halving the
  resolution halves noise but not texture), plus the median-absolute-deviation estimate and the
  colour correlation of the residual (Gaussian noise is independent per channel, texture is not);
- low light and haze: brightness quantiles, saturation, the dark channel (minimum over the colour
  channels and 8x8 blocks: large under haze) and the bright channel, local contrast;
- blur: gradient magnitude at three scales (blur removes the fine scales) and the coherence of the
  structure tensor (motion blur is directional);
- rain: the energy of thin ridges averaged along lines at 8 orientations, at two scales (streaks
  are thin, bright and parallel: the energy of bright ridges peaks at one orientation, and there
  they outweigh dark ridges, which blurred texture and noise make as often as bright ones).

All statistics are logarithms or ratios pooled over the image, so they do not depend on its size,
and they are invariant to the training augmentations (flips, 90-degree rotations). The CNN sees
what the statistics miss, but only the image's detail with its local amplitude divided out: the
colours, brightness and contrast of a training set's few scenes would otherwise let it recognise
the scene instead of the degradation (on the stand-in data, a CNN on the raw image recognised 39%
of the test images on its own, one on the normalised detail 82%). Input: (B, 3, H, W) in [0, 1],
any size (images smaller than ``MIN_SIZE`` are padded by replication, larger than ``MAX_SIZE``
analysed in their centre window); output: logits over the setting's degradation ids.

Checkpoints (:func:`save_recognizer` / :func:`load_recognizer`) are self-contained: the format tag,
the architecture config, the setting, its degradation ids and task names, the weights, and how it
was trained; they load with ``torch.load(weights_only=True)``, strictly.

Modules: ``statistics.py`` (the image statistics and the normalised detail), ``model.py`` (the
network and the ids it chooses from), ``checkpoint.py`` (its checkpoint format).
"""
from net.recognizer.checkpoint import FORMAT, FORMAT_VERSION, RecognizerError, load_recognizer, save_recognizer
from net.recognizer.model import MAX_SIZE, MIN_SIZE, DegradationRecognizer, RecognizerConfig, setting_ids
from net.recognizer.statistics import NUM_STATISTICS, degradation_statistics, local_detail

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_SIZE",
    "MIN_SIZE",
    "NUM_STATISTICS",
    "DegradationRecognizer",
    "RecognizerConfig",
    "RecognizerError",
    "degradation_statistics",
    "load_recognizer",
    "local_detail",
    "save_recognizer",
    "setting_ids",
]
