import sys, numpy as np, stempeg, json, onnx
from pathlib import Path
sys.path.insert(0,'/work/main')
from realtime_split.spectral import Stft
from realtime_split.model_format import StftGeometry
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static, CalibrationMethod
from onnxruntime.quantization.shape_inference import quant_pre_process
src, dst = sys.argv[1], sys.argv[2]
n_tracks = int(sys.argv[3]) if len(sys.argv) > 3 else 40
method = sys.argv[4] if len(sys.argv) > 4 else 'MinMax'
g = StftGeometry()
stft = Stft(g, 65536)
rng = np.random.default_rng(0)
mags = []
for path in sorted(Path('/work/shared/data/musdb18-preview/train').glob('*.stem.mp4'))[:n_tracks]:
    audio, _ = stempeg.read_stems(str(path), stem_id=0)
    audio = np.ascontiguousarray(audio.T, np.float32)
    start = int(rng.integers(0, max(1, audio.shape[1] - 65536)))
    w = audio[:, start:start + 65536]
    if w.shape[1] < 65536: w = np.pad(w, ((0,0),(65536-w.shape[1],0)))
    mags.append(np.ascontiguousarray(np.abs(stft.forward(w[None])[..., :g.bins])))
print(len(mags), mags[0].shape)
np.save('calib_first.npy', mags[0])
class Reader(CalibrationDataReader):
    def __init__(self): self.items = iter({'magnitude': m} for m in mags)
    def get_next(self): return next(self.items, None)
pre = dst + '.pre.onnx'
quant_pre_process(src, pre, skip_symbolic_shape=True)
quantize_static(pre, dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=['Conv'],
    calibrate_method=getattr(CalibrationMethod, method), extra_options={'CalibMovingAverage': False})
print('done')
