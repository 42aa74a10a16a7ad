"""ConvTranspose (stride 2, kernel 5, no pads) -> Conv 3x3 on 4 phases + DepthToSpace + Slice."""
import sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
src, dst = sys.argv[1], sys.argv[2]
m = onnx.load(src)
g = m.graph
inits = {i.name: i for i in g.initializer}
prod = {o: n for n in g.node for o in n.output}
def weight(name):
    if name in inits: return numpy_helper.to_array(inits[name]), None
    n = prod[name]; assert n.op_type == 'Cast'
    return numpy_helper.to_array(inits[n.input[0]]), inits[n.input[0]].data_type
new_nodes = []
k = 0
for n in g.node:
    if n.op_type != 'ConvTranspose':
        new_nodes.append(n); continue
    at = {a.name: helper.get_attribute_value(a) for a in n.attribute}
    assert at['strides'] == [2, 2] and at['kernel_shape'] == [5, 5] and at.get('group', 1) == 1
    assert 'pads' not in at and 'output_padding' not in at and 'output_shape' not in at
    w, dtype = weight(n.input[1])
    w = w.astype(np.float32)
    cin, cout = w.shape[:2]
    taps = {0: [4, 2, 0], 1: [None, 3, 1]}
    W = np.zeros((4 * cout, cin, 3, 3), np.float32)
    for rh in (0, 1):
        for rw in (0, 1):
            for th, kh in enumerate(taps[rh]):
                for tw, kw in enumerate(taps[rw]):
                    if kh is None or kw is None: continue
                    W[(rh * 2 + rw) * cout:(rh * 2 + rw + 1) * cout, :, th, tw] = w[:, :, kh, kw].T
    p = f'phase{k}_'; k += 1
    wname = p + 'W'
    if dtype == TensorProto.FLOAT16:
        g.initializer.append(numpy_helper.from_array(W.astype(np.float16), wname + '16'))
        new_nodes.append(helper.make_node('Cast', [wname + '16'], [wname], to=TensorProto.FLOAT))
    else:
        g.initializer.append(numpy_helper.from_array(W, wname))
    ins = [n.input[0], wname]
    if len(n.input) > 2 and n.input[2]:
        b, bd = weight(n.input[2])
        B = np.tile(b.astype(np.float32), 4)
        g.initializer.append(numpy_helper.from_array(B, p + 'B'))
        ins.append(p + 'B')
    new_nodes.append(helper.make_node('Conv', ins, [p + 'c'], kernel_shape=[3, 3], pads=[2, 2, 2, 2], strides=[1, 1]))
    new_nodes.append(helper.make_node('DepthToSpace', [p + 'c'], [p + 'd'], blocksize=2, mode='DCR'))
    for name, val in (('st', [0, 0]), ('en', [-1, -1]), ('ax', [2, 3])):
        g.initializer.append(numpy_helper.from_array(np.array(val, np.int64), p + name))
    new_nodes.append(helper.make_node('Slice', [p + 'd', p + 'st', p + 'en', p + 'ax'], [n.output[0]]))
del g.node[:]
g.node.extend(new_nodes)
used = {i for nd in g.node for i in nd.input}
keep = [i for i in g.initializer if i.name in used]
del g.initializer[:]; g.initializer.extend(keep)
onnx.checker.check_model(m)
onnx.save(m, dst)
print('rewrote', k)
