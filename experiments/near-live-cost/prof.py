import onnxruntime as ort, numpy as np, json, collections, sys, time
path=sys.argv[1]
so=ort.SessionOptions(); so.intra_op_num_threads=1; so.inter_op_num_threads=1
so.execution_mode=ort.ExecutionMode.ORT_SEQUENTIAL
so.enable_profiling=True
s=ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
x=np.abs(np.random.default_rng(0).standard_normal((1,2,64,1024))).astype(np.float32)
for _ in range(3): s.run(None,{'magnitude':x})
t=[]
for _ in range(20):
    a=time.process_time(); s.run(None,{'magnitude':x}); t.append(time.process_time()-a)
print('cpu per run ms p50', 1e3*np.median(t))
f=s.end_profiling()
ev=json.load(open(f))
c=collections.Counter()
for e in ev:
    if e.get('cat')=='Node' and e['name'].endswith('_kernel_time'):
        c[e['args']['op_name']]+=e['dur']
tot=sum(c.values())
for k,v in c.most_common(12): print(k, f"{100*v/tot:.1f}%", v/23/1e3,'ms/run')
import os; os.remove(f)
