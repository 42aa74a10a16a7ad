"""Probe: does norbert's multichannel Wiener EM help the quality model? Whole preview in one piece."""
import sys, numpy as np, onnxruntime as ort, norbert
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realtime_split.model_format import parse_metadata
from realtime_split.spectral import Stft, extend_masks
from training.datasets import open_dataset
from training.evaluate import bsseval_sdr
model = sys.argv[1]
s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
info = parse_metadata(dict(s.get_modelmeta().custom_metadata_map))
g = info.frontend
tracks = open_dataset("musdb", Path(__file__).resolve().parents[2] / "shared" / "data" / "musdb18-preview", "valid")
res = {k: [] for k in ("ratio", "wiener1", "wiener0")}
for t in tracks:
    _, rate, refs = (t.name, *t.load())
    stems = ["vocals", "drums", "bass", "other"]
    mix = sum(refs[k] for k in stems).astype(np.float32)
    n = len(mix); W = -(-n // 65536) * 65536
    x = np.zeros((1, 2, W), np.float32); x[0, :, :n] = mix.T
    st = Stft(g, W); X = st.forward(x)
    masks = s.run(["masks"], {"magnitude": np.abs(X[..., :g.bins])})[0]
    M = extend_masks(masks, X.shape[-1])  # (1,S,2,F,K)
    ref = np.stack([refs[k] for k in stems])
    out = {}
    out["ratio"] = st.inverse(X[:, None] * M, 0, 0, W)[0]
    V = (M[0] * np.abs(X[0])[None]).transpose(2, 3, 1, 0)  # (F,K,2,S)
    Xn = X[0].transpose(1, 2, 0)  # (F,K,2)
    for it in (0, 1):
        Y = norbert.wiener(V, Xn, it)  # (F,K,2,S)
        out[f"wiener{it}"] = st.inverse(Y.transpose(3, 2, 0, 1)[None], 0, 0, W)[0]
    for k, y in out.items():
        est = y[:, :, :n].transpose(0, 2, 1)
        res[k].append(bsseval_sdr(ref, est, rate))
    print(t.name, {k: np.round(v[-1], 2).tolist() for k, v in res.items()}, flush=True)
for k, v in res.items():
    print(k, np.round(np.nanmedian(np.array(v), axis=0), 2))
