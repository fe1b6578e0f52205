# Two entry points: `make demo` (the main job) and `make test`. Both create .venv
# on first use and reinstall only when pyproject.toml changes.
PYTHON ?= python3.11
SHARED ?= ../shared
VENV := .venv
STAMP := $(VENV)/.installed

# Transparent huge pages for glibc's malloc (glibc >= 2.35; ignored elsewhere). XLA's CPU
# runtime maps its large temporary buffers afresh at every call, and touching them page by
# page costs a third of a training step at 4 KiB pages: the campaign's step takes 0.75 s
# instead of 1.17 s with it (benchmarks/README.md, "Huge pages").
export GLIBC_TUNABLES ?= glibc.malloc.hugetlb=1

.PHONY: demo test lint clean results study train accelerator-smoke accelerator-pack

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or make PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[video,dev,experiments]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/iac-jax demo --output_dir=demo_output

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

# One run of the global-model campaign: continues from runs/campaign or the shipped
# weights, trains HOURS of wall time at nice 19, writes a decayed snapshot into
# iac_jax/weights and appends the held-out learning curve (needs ../shared/data).
HOURS ?= 1
train: $(STAMP)
	nice -n 19 $(VENV)/bin/python experiments/train_campaign.py \
	  --images=$(SHARED)/data/train_images --hours=$(HOURS) $(TRAIN_FLAGS)

# Regenerates results/adaptation_study (about 1.5 hours on 2 CPU cores; needs
# ../shared/data). Resumable: rows already in study.csv are not run again.
STUDY = $(VENV)/bin/python experiments/adaptation_study.py --data=$(SHARED)/data
study: $(STAMP)
	$(STUDY) --clips=bridge --settings=base --steps=100,300,1000
	$(STUDY) --clips=bridge --models=small-beta100 --steps=300 \
	  --settings=lr3e-5,warmup,delta-lr1e-3,t0.01,alpha100,synthesis,biases-gdn,choose,t0.0025,decay
	$(STUDY) --clips=cup --settings=base,lr3e-5 --steps=100,300
	$(STUDY) --clips=bridge --settings=default --methods=full --steps=300
	$(STUDY) --clips=box,cups --settings=base --methods=encoder --steps=300
	$(STUDY) --clips=box,cups --settings=default --methods=full --steps=300
	$(STUDY) --clips=bridge,cup,box,cups --settings=base --methods=none --steps=0
	$(STUDY) --clips=bridge --models=small-beta100 --settings=base,default --seeds=1 --steps=300

# Regenerates results/adaptation (hours on 2 CPU cores; needs ../shared/data/videos).
# Every step resumes: points already in the CSVs are skipped.
results: $(STAMP)
	$(VENV)/bin/python experiments/rd_sweep.py --output_dir=results/adaptation \
	  --videos=$(SHARED)/data/videos/bigbuckbunny.mp4,$(SHARED)/data/videos/carphone_176x144.y4m \
	  --methods=none,encoder,full,full-no-model-rate,full-no-qat,latents
	$(VENV)/bin/python experiments/rd_sweep.py --output_dir=results/adaptation \
	  --videos=$(SHARED)/data/videos/bigbuckbunny.mp4,$(SHARED)/data/videos/carphone_176x144.y4m \
	  --models=small-beta100 --methods=none,encoder,full --iframes=2,4,0
	$(VENV)/bin/python experiments/classical_sweep.py --output_dir=results/adaptation \
	  --videos=$(SHARED)/data/videos/bigbuckbunny.mp4,$(SHARED)/data/videos/carphone_176x144.y4m
	$(VENV)/bin/python experiments/plot_rd.py --results_dir=results/adaptation \
	  --stream=results/adaptation/streams/bigbuckbunny.11.small-beta100.full.iac

# The accelerator lane (benchmarks/accelerator_run.py): a Python 3.12 venv with the
# newest JAX, Flax, Optax, Orbax and NumPy 2 and no TensorFlow, as on the GPU machine.
# accelerator-smoke runs the prepared run at tiny sizes there, then ingests it with the
# pinned stack; its last line is "accelerator smoke: ok" only if the frames it coded
# decode bit-exactly.
ACCEL_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.12)
ACCEL_VENV := .venv-accel
ACCEL_STAMP := $(ACCEL_VENV)/.installed

$(ACCEL_STAMP):
	@$(ACCEL_PYTHON) --version >/dev/null 2>&1 || { echo "need Python 3.12 (make ACCEL_PYTHON=/path/to/python3.12 ...)"; exit 1; }
	test -x $(ACCEL_VENV)/bin/python || $(ACCEL_PYTHON) -m venv $(ACCEL_VENV)
	$(ACCEL_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(ACCEL_VENV)/bin/python -m pip install --quiet --upgrade jax flax optax orbax-checkpoint numpy scipy pillow absl-py msgpack pytest
	touch $(ACCEL_STAMP)

accelerator-smoke: $(STAMP) $(ACCEL_STAMP)
	rm -rf runs/accelerator-smoke
	$(ACCEL_VENV)/bin/python benchmarks/accelerator_run.py --smoke --out=runs/accelerator-smoke
	$(VENV)/bin/python benchmarks/accelerator_ingest.py --results=runs/accelerator-smoke
	@echo "accelerator smoke: ok"

# What `carry` takes to the GPU machine (README, "Running on a GPU"): the training photos
# (lossless WebP) and the local campaign branch's weights, within the 64 MiB that travel.
accelerator-pack: $(STAMP)
	$(VENV)/bin/python benchmarks/accelerator_pack.py --images=$(SHARED)/data/train_images

lint: $(STAMP)
	$(VENV)/bin/ruff check iac_jax experiments tests benchmarks

clean:
	rm -rf $(VENV) $(ACCEL_VENV) demo_output
