import onnxruntime as ort, numpy as np, json, collections, re
so=ort.SessionOptions(); so.intra_op_num_threads=1; so.inter_op_num_threads=1; so.enable_profiling=True
s=ort.InferenceSession('/work/main/realtime_split/models/quality.onnx', so, providers=['CPUExecutionProvider'])
x=np.load('calib_first.npy')
for _ in range(23): s.run(None,{'magnitude':x})
ev=json.load(open(s.end_profiling()))
c=collections.Counter(); tot=0
for e in ev:
    if e.get('cat')=='Node' and e['name'].endswith('_kernel_time'):
        tot+=e['dur']
        m=re.search(r'_(enc|dec)(\d)', e['name']) or re.search(r'(conv|deconv)(\d*)', e['name'])
        if e['args']['op_name'] in ('Conv','ConvTranspose'):
            key=(e['args']['op_name'], re.search(r'(dec\d|enc\d|conv\w*?)_', e['name']).group(1) if re.search(r'(dec\d|enc\d|conv\w*?)_', e['name']) else e['name'][:40])
            c[key]+=e['dur']
for k,v in sorted(c.items()): print(k, f"{v/23/1e3:.2f} ms/run")
print('total', tot/23/1e3)
