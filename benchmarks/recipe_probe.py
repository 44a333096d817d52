"""Recipe probe: a bare feature-mimicking loop on the headline cell, for trying levers before they enter fsmc.

Not the product's loop (that is fsmc.recover.loop): a short, hackable script on the same draw, pruning and
teacher, used for the issue-11 experiments in benchmarks/LOG.md (augmentation with the teacher online,
BatchNorm recalibration, stage-wise mimicking, ...). Appends one JSON line per run to reports/recipe_probe.jsonl.

    python benchmarks/recipe_probe.py --steps 400 --id-per-batch 64 --cl [--aug flip|crop|mixup] --tag NAME
"""
import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("FSMC_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
os.environ.setdefault("FSMC_MODEL_DIR", str(REPO.parent / "shared" / "models"))

p = argparse.ArgumentParser()
p.add_argument("--seed", type=int, default=0)
p.add_argument("--rho", type=float, default=10)
p.add_argument("--budget", default="12320")
p.add_argument("--steps", type=int, default=500)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--id-per-batch", type=int, default=-1)  # -1 uniform over ID u OOD
p.add_argument("--lr", type=float, default=0.02)
p.add_argument("--wd", type=float, default=1e-4)
p.add_argument("--feat", type=float, default=1.0)
p.add_argument("--stagew", type=float, default=0.0)
p.add_argument("--kd", type=float, default=0.1)
p.add_argument("--T", type=float, default=4.0)
p.add_argument("--ce", type=float, default=0.0)
p.add_argument("--aug", default="none")
p.add_argument("--bf16", action="store_true")
p.add_argument("--cl", action="store_true")
p.add_argument("--train-head", action="store_true")
p.add_argument("--noood", action="store_true")
p.add_argument("--tag", default="")
p.add_argument("--gce", type=float, default=0.0)
p.add_argument("--flip-views", action="store_true")  # horizontal flips of every shot and OOD image join the cached pool
p.add_argument("--ema", type=float, default=0.0)  # evaluate an exponential moving average of the student (decay)
p.add_argument("--sched", default="cos")  # cos | onecycle
p.add_argument("--recal", action="store_true")  # also evaluate with BatchNorm statistics re-estimated
p.add_argument("--aug-id", default="none")  # flip | crop: augment only the shots of each batch, teacher online for them
p.add_argument("--shot-views", type=int, default=1)  # N fixed views per shot (the shot + N-1 random crop+flip), teacher outputs cached
p.add_argument("--cw-distill", action="store_true")  # weight each shot's feature MSE by its class weight w_c (OOD images weigh 1)
p.add_argument("--ood-jpeg", type=int, default=0)  # re-encode every OOD image as JPEG at this quality (the ID copy's own compression)
p.add_argument("--ood-jpeg-mode", default="replace")  # replace | add (the re-encoded copies join the pool beside the originals)
p.add_argument("--logit-mse", type=float, default=0.0)  # weight of an MSE between student and teacher logits (T = 1)
p.add_argument("--teacher-tta", action="store_true")  # cached teacher targets averaged over the image and its mirror
p.add_argument("--refit-head", type=float, default=0.0)  # after training, also evaluate with the head refit to the teacher's soft targets at this T
p.add_argument("--oracle-pool", type=int, default=0)  # diagnostic: N unlabelled CIFAR train images replace the OOD pool (an upper bound on what data can buy)
p.add_argument("--opt", default="sgd")  # sgd | adamw (lr is then Adam's)
p.add_argument("--compile", action="store_true")  # torch.compile the student's training forward
# mse | partial: mimic the last block's pre-ReLU sum (Heo et al. 2019: partial L2 with a per-channel margin)
p.add_argument("--pre-relu", default="", choices=["", "mse", "partial"])
p.add_argument("--ood-sampling", default="uniform")  # uniform | balanced | against-prior: OOD drawn by the teacher's predicted class
a = p.parse_args()
if a.pre_relu and (a.aug != "none" or a.aug_id != "none" or a.cw_distill):
    p.error("--pre-relu needs cached teacher targets and the plain feature loss: drop --aug, --aug-id and --cw-distill")
torch.set_num_threads(2)
torch.set_flush_denormal(True)  # Adam's second moments of tiny gradients underflow into denormals, which run ~10x slower on x86

# fsmc is imported only now: it needs the sys.path line above (a script run from benchmarks/), and --help stays quick.
from fsmc.config import load_params  # noqa: E402
from fsmc.data.complementary import class_prior, class_weights, complementary_distribution  # noqa: E402
from fsmc.data.images import to_tensor  # noqa: E402
from fsmc.models.checkpoint import load_checkpoint  # noqa: E402
from fsmc.pipeline import run_pipeline  # noqa: E402
from fsmc.stages.reading import few_shot_set, ood_set  # noqa: E402
from fsmc.workspace import Workspace  # noqa: E402

t0 = time.perf_counter()

s = a.seed
overrides = ["data.dataset=cifar10", "data.teacher=resnet56-jpeg", "compress.scheme=channel", "compress.importance=l1",
    "compress.ratio=0.5", "sample_few_shot.k_max=50", f"sample_few_shot.imbalance_ratio={a.rho}", "sample_few_shot.profile=exp",
    f"sample_few_shot.seed={s}", f"curate_ood.seed={s}", f"recover.seed={s}", "recover.method=mir", f"curate_ood.budget={a.budget}"]
params = load_params(REPO / "params.yaml", overrides)
ws = Workspace(REPO / "reports" / "recipe_probe" / f"ws-{s}-{a.rho}-{a.budget}")
run_pipeline(params, ws, stop_before="recover")
teacher, _, _ = load_checkpoint(ws.teacher_model)
pruned, _, _ = load_checkpoint(ws.pruned_model)
dataset, frame, few = few_shot_set(params, ws)
_, ood = ood_set(params, ws)
X = to_tensor(few.images, few.pixel_max)
Y = torch.from_numpy(few.labels)
X_OOD = to_tensor(ood.images, ood.pixel_max)
if a.noood:
    X_OOD = X_OOD[:0]
if a.oracle_pool:
    train = dataset.train
    pick = np.random.default_rng(1234 + s).choice(len(train.images), a.oracle_pool, replace=False)
    X_OOD = to_tensor(train.images[pick], train.pixel_max)
if a.ood_jpeg:
    import io

    from PIL import Image

    def jpeg(img):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=a.ood_jpeg)
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))

    tj = time.perf_counter()
    X_J = to_tensor(np.stack([jpeg(im) for im in ood.images]), ood.pixel_max)
    print(f"jpeg {time.perf_counter()-tj:.1f}s", flush=True)
    X_OOD = X_J if a.ood_jpeg_mode == "replace" else torch.cat([X_OOD, X_J])
if a.flip_views:
    X, Y, X_OOD = torch.cat([X, X.flip(3)]), torch.cat([Y, Y]), torch.cat([X_OOD, X_OOD.flip(3)])
if a.shot_views > 1:
    gv = torch.Generator().manual_seed(1000 + s)
    views = [X]
    for _ in range(a.shot_views - 1):
        v = torch.where((torch.rand(len(X), generator=gv) < 0.5)[:, None, None, None], X.flip(3), X)
        pad = F.pad(v, (4, 4, 4, 4), mode="reflect")
        ox, oy = torch.randint(0, 9, (len(X),), generator=gv), torch.randint(0, 9, (len(X),), generator=gv)
        views.append(torch.stack([pad[i, :, oy[i]:oy[i]+32, ox[i]:ox[i]+32] for i in range(len(X))]))
    X, Y = torch.cat(views), Y.repeat(a.shot_views)
test = dataset.test
TX, TY = to_tensor(test.images, test.pixel_max), torch.from_numpy(np.asarray(test.labels))
print(f"setup {time.perf_counter()-t0:.1f}s  ID {len(X)} OOD {len(X_OOD)} counts {np.bincount(few.labels).tolist()}", flush=True)

def stages(model, x, pre=False):
    net = model.net
    x = (x - model.mean) / model.std
    h = F.relu(net.bn1(net.conv1(x)))
    h1 = net.layer1(h)
    h2 = net.layer2(h1)
    if not pre:
        return [h1, h2, net.layer3(h2)]
    h = net.layer3[:-1](h2)
    block = net.layer3[-1]
    p3 = block.bn2(block.conv2(F.relu(block.bn1(block.conv1(h))))) + block.shortcut(h)
    return [h1, h2, F.relu(p3), p3]

def augment(x, g):
    if a.aug == "none":
        return x
    n = len(x)
    if a.aug in ("flip", "crop"):
        flip = torch.rand(n, generator=g) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if a.aug == "mixup":
        perm = torch.randperm(n, generator=g)
        lam = torch.distributions.Beta(1.0, 1.0).sample((n,))[:, None, None, None]
        x = lam * x + (1 - lam) * x[perm]
        return x
    if a.aug == "crop":
        pad = F.pad(x, (4, 4, 4, 4), mode="reflect")
        ox = torch.randint(0, 9, (n,), generator=g)
        oy = torch.randint(0, 9, (n,), generator=g)
        x = torch.stack([pad[i, :, oy[i]:oy[i]+32, ox[i]:ox[i]+32] for i in range(n)])
    return x

student = copy.deepcopy(pruned)
student.net.linear.load_state_dict(teacher.net.linear.state_dict())
if not a.train_head:
    for q in student.net.linear.parameters():
        q.requires_grad_(False)
teacher.eval()
if a.cl:
    student = student.to(memory_format=torch.channels_last)
    teacher = teacher.to(memory_format=torch.channels_last)
g = torch.Generator().manual_seed(s)
torch.manual_seed(s)
trainable = [q for q in student.parameters() if q.requires_grad]
opt = (torch.optim.AdamW(trainable, lr=a.lr, weight_decay=a.wd) if a.opt == "adamw"
       else torch.optim.SGD(trainable, lr=a.lr, momentum=0.9, weight_decay=a.wd, nesterov=True))
sched = (
    torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.05, anneal_strategy="cos", div_factor=10, final_div_factor=100)
    if a.sched == "onecycle"
    else torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.steps)
)
ALL = torch.cat([X, X_OOD])
n_id = len(X)
ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.bf16 else (lambda: torch.autocast("cpu", enabled=False))
CACHE = None
if a.aug == "none":
    tc = time.perf_counter()
    outs = [[], [], []]
    logs = []
    with torch.no_grad():
        for k in range(0, len(ALL), 500):
            xs = ALL[k:k+500]
            if a.cl:
                xs = xs.contiguous(memory_format=torch.channels_last)
            st = stages(teacher, xs, pre=bool(a.pre_relu))
            if a.teacher_tta:  # the mirror's feature maps mirrored back, averaged with the image's
                st = [(u + v.flip(3)) / 2 for u, v in zip(st, stages(teacher, xs.flip(3), pre=bool(a.pre_relu)))]
            logs.append(teacher.net.forward_head(st[2]))
            for i, v in enumerate(st[:3]):
                if a.stagew or i == 2:
                    outs[i].append(st[3] if a.pre_relu and i == 2 else v)
    CACHE = ([torch.cat(u) if u else None for u in outs], torch.cat(logs))
    print(f"teacher cache {time.perf_counter()-tc:.1f}s", flush=True)
ema = torch.optim.swa_utils.AveragedModel(student, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(a.ema), use_buffers=True) if a.ema else None
prior = class_prior(np.bincount(few.labels, minlength=10).tolist())
GAM = complementary_distribution(prior)
WC = class_weights(prior)
OOD_W = None
if a.ood_sampling != "uniform":
    pred_ood = CACHE[1][n_id:].argmax(1)
    per_class = torch.bincount(pred_ood, minlength=10).float().clamp_min(1)
    share = torch.full((10,), 0.1) if a.ood_sampling == "balanced" else torch.as_tensor(np.asarray(GAM), dtype=torch.float32)
    OOD_W = (share / per_class)[pred_ood]
    if a.ood_sampling == "confident":  # OOD images the teacher finds ID-like drawn more often
        OOD_W = CACHE[1][n_id:].float().softmax(1).amax(1)
    print("ood teacher classes", per_class.int().tolist(), "share", [round(float(v), 3) for v in share], flush=True)
MARGIN = None
if a.pre_relu:  # per channel, the mean of the teacher's negative pre-ReLU responses (the margin of partial L2)
    tp = CACHE[0][2].float()
    neg = tp.clamp_max(0)
    MARGIN = (neg.sum(dim=(0, 2, 3)) / (tp < 0).sum(dim=(0, 2, 3)).clamp_min(1))[None, :, None, None]
    print("pre-ReLU margin per channel: mean", round(float(MARGIN.mean()), 4), "negative share", round(float((tp < 0).float().mean()), 3), flush=True)
def student_forward(x):
    ss = stages(student, x, pre=bool(a.pre_relu))
    return ss, student.net.forward_head(ss[2])
if a.compile:
    student_forward = torch.compile(student_forward)
t1 = time.perf_counter()
tt = 0.0
for step in range(a.steps):
    student.train()
    if a.id_per_batch >= 0:
        i = torch.randint(n_id, (a.id_per_batch,), generator=g)
        if OOD_W is None:
            j = torch.randint(len(X_OOD), (a.batch - a.id_per_batch,), generator=g) + n_id
        else:
            j = torch.multinomial(OOD_W, a.batch - a.id_per_batch, replacement=True, generator=g) + n_id
        idx = torch.cat([i, j])
    else:
        idx = torch.randint(len(ALL), (a.batch,), generator=g)
    x = augment(ALL[idx], g)
    if a.cl:
        x = x.contiguous(memory_format=torch.channels_last)
    ta = time.perf_counter()
    if CACHE is not None:
        ts = [c[idx] if c is not None else None for c in CACHE[0]]
        tl = CACHE[1][idx]
        if a.aug_id != "none":
            lab = idx < n_id
            xa = x[lab].contiguous()
            flip = torch.rand(len(xa), generator=g) < 0.5
            xa = torch.where(flip[:, None, None, None], xa.flip(3), xa)
            if a.aug_id == "crop":
                pad = F.pad(xa, (4, 4, 4, 4), mode="reflect")
                ox = torch.randint(0, 9, (len(xa),), generator=g)
                oy = torch.randint(0, 9, (len(xa),), generator=g)
                xa = torch.stack([pad[i, :, oy[i]:oy[i]+32, ox[i]:ox[i]+32] for i in range(len(xa))])
            if a.cl:
                xa = xa.contiguous(memory_format=torch.channels_last)
            with torch.no_grad(), ctx():
                ta_s = stages(teacher, xa)
                ta_l = teacher.net.forward_head(ta_s[-1])
            x = x.clone()
            x[lab] = xa
            ts = [t.clone() if t is not None else None for t in ts]
            ts[-1][lab] = ta_s[-1].float()
            tl = tl.clone()
            tl[lab] = ta_l.float()
            if a.cl:
                x = x.contiguous(memory_format=torch.channels_last)
    else:
        with torch.no_grad(), ctx():
            ts = stages(teacher, x)
            tl = teacher.net.forward_head(ts[-1])
    tt += time.perf_counter() - ta
    with ctx():
        ss, sl = student_forward(x)
    if a.cw_distill:
        per_image = (ss[-1].float() - ts[-1].float()).pow(2).mean(dim=(1, 2, 3))
        lab = idx < n_id
        w = torch.ones(len(idx))
        w[lab] = WC[Y[idx[lab]]]
        loss = a.feat * (w * per_image).mean()
    elif a.pre_relu == "partial":
        sp, tp = ss[3].float(), ts[-1].float()
        target = torch.where(tp > 0, tp, MARGIN)
        keep = (sp > target) | (target > 0)
        loss = a.feat * ((sp - target).pow(2) * keep).mean()
    elif a.pre_relu == "mse":
        loss = a.feat * F.mse_loss(ss[3].float(), ts[-1].float())
    else:
        loss = a.feat * F.mse_loss(ss[-1].float(), ts[-1].float())
    if a.logit_mse:
        loss = loss + a.logit_mse * F.mse_loss(sl.float(), tl.float())
    if a.stagew:
        loss = loss + a.stagew * sum(F.mse_loss(u.float(), v.float()) for u, v in zip(ss[:-1], ts[:-1]))
    if a.kd:
        loss = loss + a.kd * a.T**2 * F.kl_div(F.log_softmax(sl.float() / a.T, 1), F.softmax(tl.float() / a.T, 1), reduction="batchmean")
    if a.ce and a.aug != "mixup":
        lab = idx < n_id
        if lab.any():
            loss = loss + a.ce * F.cross_entropy(sl.float()[lab], Y[idx[lab]])
    if a.gce:
        o = idx >= n_id
        if o.any():
            gl = torch.multinomial(GAM, int(o.sum()), replacement=True, generator=g)
            loss = loss + a.gce * F.cross_entropy(sl.float()[o], gl, weight=WC)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    if ema is not None:
        ema.update_parameters(student)
    if step % 100 == 0:
        print(f"step {step} loss {loss.item():.4f} {time.perf_counter()-t1:.0f}s", flush=True)
train_s = time.perf_counter() - t1
def evaluate(m):
    m.eval()
    preds = []
    with torch.inference_mode():
        for k in range(0, len(TX), 1000):
            preds.append(m(TX[k:k+1000].contiguous()).argmax(1))
    return torch.cat(preds)
def recal(m, xs):
    m = copy.deepcopy(m)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None
    m.train()
    with torch.no_grad():
        for k in range(0, len(xs), 256):
            m(xs[k:k+256])
    return m
for name, xs in [] if not a.recal else [("recal_id", torch.cat([X, X.flip(3)])), ("recal_mix", torch.cat([X, X.flip(3), X_OOD[:2000]]))]:
    pr = evaluate(recal(student, xs))
    pcs = [(pr[TY == c] == c).float().mean().item() * 100 for c in range(10)]
    print(name, round((pr == TY).float().mean().item() * 100, 2), "worst", round(min(pcs), 2), flush=True)
if ema is not None:
    student = ema.module
if a.refit_head:
    tr = time.perf_counter()
    student.eval()
    feats = []
    with torch.inference_mode(), ctx():
        for k in range(0, len(ALL), 500):
            xs = ALL[k:k+500].contiguous(memory_format=torch.channels_last) if a.cl else ALL[k:k+500]
            feats.append(torch.flatten(F.adaptive_avg_pool2d(stages(student, xs)[-1].float(), 1), 1))
    feats = torch.cat(feats)
    target = F.softmax(CACHE[1].float() / a.refit_head, 1)
    head = copy.deepcopy(student.net.linear)
    for q in head.parameters():
        q.requires_grad_(True)
    lb = torch.optim.LBFGS(head.parameters(), lr=1, max_iter=200, history_size=20, line_search_fn="strong_wolfe")
    def closure():
        lb.zero_grad()
        out = F.kl_div(F.log_softmax(head(feats) / a.refit_head, 1), target, reduction="batchmean")
        out.backward()
        return out
    lb.step(closure)
    refit = copy.deepcopy(student)
    refit.net.linear.load_state_dict(head.state_dict())
    pr = evaluate(refit)
    pcs = [(pr[TY == c] == c).float().mean().item() * 100 for c in range(10)]
    cnt = np.bincount(few.labels, minlength=10)
    mino = np.argsort(cnt, kind="stable")[:3]
    print("refit_head", round((pr == TY).float().mean().item() * 100, 2), "worst", round(min(pcs), 2),
          "minority", round(float(np.mean([pcs[c] for c in mino])), 2), f"{time.perf_counter()-tr:.1f}s", flush=True)
pred = evaluate(student)
pc = [(pred[TY == c] == c).float().mean().item() * 100 for c in range(10)]
top1 = (pred == TY).float().mean().item() * 100
T_TOP1, T_PC = 89.64, None
counts = np.bincount(few.labels, minlength=10)
minority = np.argsort(counts, kind="stable")[:3]
res = dict(tag=a.tag, args=vars(a), top1=round(top1, 2), worst=round(min(pc), 2), cat=round(pc[3], 2),
           minority=round(float(np.mean([pc[c] for c in minority])), 2), per_class=[round(v, 1) for v in pc],
           train_s=round(train_s, 1), teacher_s=round(tt, 1), img_s=round(a.steps * a.batch / train_s, 1))
print(json.dumps(res), flush=True)
(REPO / "reports").mkdir(exist_ok=True)
open(REPO / "reports" / "recipe_probe.jsonl", "a").write(json.dumps(res) + "\n")
