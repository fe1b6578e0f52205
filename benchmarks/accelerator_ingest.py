"""Back on the CPU machine: check and record what `accelerator_run.py` brought back.

  .venv/bin/python benchmarks/accelerator_ingest.py --results=DIR [--readme=benchmarks/README.md] \
      [--install_weights]

- adapt.npz: range-codes the returned update and the latents' integers into a real
  bitstream with this machine's coder, decodes it in a fresh process, and checks
  that the decoded frames equal the accelerator's reconstruction bit for bit (and
  how far this machine's own encoder would have differed: latents and pixels).
- flips.npz: this machine's scale indexes for the accelerator's z, compared.
- results.json: the environment, throughput, memory, scan and test tables, written
  into a marked section of --readme (and printed).
- weights.msgpack: with --install_weights, the trained models are written as the
  shipped models (on their 9-bit grids, as shipped), so that the campaign (`make train`)
  continues from them; the local constant-rate branch, older than them, is moved
  aside (a branch with more cumulative steps than they have is kept, and nothing is
  installed). Commit `iac_jax/weights` afterwards.

Exits non-zero, with one line saying why, if anything returned does not check out
(a model fingerprint that is not this checkout's, an update of the wrong shape,
decoded frames that differ).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

import jax
import numpy as np
from absl import app, flags
from flax import serialization

from iac_jax.adaptation import update_coding
from iac_jax.adaptation.model_prior import ModelPrior
from iac_jax.codec import bitstream, entropy_parameters, image_codec, models, weight_grid
from iac_jax.codec.configs import get_config
from iac_jax.io import atomic_io
from iac_jax.training import campaign

BEGIN = '<!-- accelerator-run:begin (written by benchmarks/accelerator_ingest.py) -->'
END = '<!-- accelerator-run:end -->'


class IngestError(ValueError):
  """Something the accelerator returned does not check out."""


def _tree_from(arrays, prefix: str, template: dict, what: str) -> dict:
  """The pytree shaped like `template` from npz entries named prefix + keystr(path)."""
  pairs, treedef = jax.tree_util.tree_flatten_with_path(template)
  expected = {prefix + jax.tree_util.keystr(p): np.shape(leaf) for p, leaf in pairs}
  present = {k for k in arrays.files if k.startswith(prefix + '[')}
  if present != set(expected):
    missing, extra = sorted(set(expected) - present), sorted(present - set(expected))
    raise IngestError(f'{what} does not match the model: missing {missing[:3]}, '
                      f'unexpected {extra[:3]}')
  leaves = []
  for key, shape in expected.items():
    value = arrays[key]
    if value.shape != shape:
      raise IngestError(f'{what}: {key} has shape {value.shape}, the model has {shape}')
    leaves.append(value)
  return jax.tree_util.tree_unflatten(treedef, leaves)


def load_adapted(path: str) -> tuple[models.Model, dict, dict, ModelPrior, dict, np.ndarray]:
  """(global model, encoder params, update ints, prior, meta, frames) of adapt.npz,
  checked against this checkout's model of the same name."""
  arrays = np.load(path)
  meta = json.loads(str(arrays['meta']))
  model = models.load_model(meta['model'])
  if model.fingerprint.hex() != meta['fingerprint']:
    raise IngestError(f'{path} was adapted from {meta["model"]} with fingerprint '
                      f'{meta["fingerprint"]}, but this checkout\'s {meta["model"]} has '
                      f'{model.fingerprint.hex()}: check out the commit the run was made '
                      'from')
  from iac_jax.codec.hyperprior import ENCODER_SIDE  # pylint: disable=g-import-not-at-top
  encoder = _tree_from(arrays, 'encoder', {k: model.params[k] for k in ENCODER_SIDE},
                       'the encoder parameters')
  ints = _tree_from(arrays, 'update', update_coding.decoder_side(model.params), 'the update')
  prior = ModelPrior(**meta['prior'])
  return model, encoder, ints, prior, meta, arrays


def check_adapt(path: str, workdir: str) -> dict:
  """Codes adapt.npz's integers, decodes them in a fresh process, compares frames."""
  model, encoder, ints, prior, meta, arrays = load_adapted(path)
  frames = arrays['frames']
  t, h, w, _ = frames.shape
  theta = update_coding.apply_update(update_coding.decoder_side(model.params), ints, prior.t)
  adapted = models.Model(model.name, model.config, {**model.params, **encoder, **theta})
  sections = [bitstream.Section(image_codec.TAG_UPDATE, update_coding.encode_update(ints, prior))]
  here = {'y_int_differ': 0, 'z_int_differ': 0, 'pixels_differ': 0}
  expected = []  # this machine's synthesis of the accelerator's integers
  for i in range(t):
    z_int, y_int = arrays[f'z_int/{i}'], arrays[f'y_int/{i}']
    mu, sigma = image_codec._entropy_parameters(adapted, z_int)  # pylint: disable=protected-access
    symbols = image_codec.FrameSymbols(z_int, y_int, entropy_parameters.scale_indexes(sigma),
                                 arrays[f'reconstruction/{i}'])
    sections += image_codec.code_symbols(adapted, symbols)
    x_hat = image_codec._synthesis(model.config, adapted.params,  # pylint: disable=protected-access
                             y_int.astype(np.float32) + mu)
    expected.append(image_codec.to_uint8(x_hat, h, w))
    mine = image_codec.frame_symbols(adapted, frames[i])  # this machine as the encoder
    here['z_int_differ'] += int(np.sum(mine.z_int != z_int))
    here['y_int_differ'] += int(np.sum(mine.y_int != y_int))
    here['pixels_differ'] += int(np.sum(mine.reconstruction != arrays[f'reconstruction/{i}']))
  header = image_codec.stream_header(model, bitstream.KIND_VIDEO, t, h, w, (2, 1))
  stream = os.path.join(workdir, 'accelerator.iac')
  atomic_io.write_bytes(stream, bitstream.pack(header, sections))
  decoded_path = os.path.join(workdir, 'decoded.npy')
  script = ('import sys, numpy as np, iac_jax; '
            'np.save(sys.argv[2], iac_jax.decode(open(sys.argv[1], "rb").read()))')
  env = dict(os.environ, PYTHONPATH=ROOT)
  proc = subprocess.run([sys.executable, '-c', script, stream, decoded_path], env=env,
                        capture_output=True, text=True, check=False)
  if proc.returncode:
    raise IngestError(f'decoding in a fresh process failed: {proc.stderr.strip()[-500:]}')
  decoded = np.load(decoded_path)
  theirs = np.stack([arrays[f'reconstruction/{i}'] for i in range(t)]).astype(np.int16)
  return {'model': model.name, 'frames': [t, h, w], 'steps': meta['steps'],
          'stream_bytes': os.path.getsize(stream),
          'update_bits': 8 * len(sections[0].payload),
          'nonzero_update': meta['nonzero_update'],
          # The decoder got exactly the accelerator's integers (latents and update) and
          # rebuilt the same adapted model: its frames equal this machine's synthesis of them.
          'bit_exact': bool(np.array_equal(decoded, np.stack(expected))),
          # The synthesis itself is float arithmetic on each device.
          'values_differ_from_accelerator_synthesis': int(np.sum(decoded != theirs)),
          'max_difference_from_accelerator_synthesis': int(np.max(np.abs(decoded - theirs))),
          'cpu_encoder_vs_accelerator': here}


def check_flips(path: str, model_name: str, workdir: str) -> dict:
  import scale_index_flips  # pylint: disable=g-import-not-at-top
  theirs = np.load(path)
  model = models.load_model(model_name)
  synthetic = sum(1 for k in theirs.files if k.startswith('synthetic') and k.endswith('/z'))
  mine = scale_index_flips.machine_indexes(model, z_from=path, synthetic=synthetic)
  mine_path = os.path.join(workdir, 'flips_here.npz')
  np.savez_compressed(mine_path, **mine)
  return scale_index_flips.compare(mine_path, path)


def _mib(n) -> str:
  return f'{n / 2**20:.0f}' if isinstance(n, (int, float)) else '-'


def report(results: dict, adapt: dict | None, flips: dict | None) -> str:
  """The tables in Markdown."""
  parts = results.get('parts', {})
  env = parts.get('env', {})
  lines = [f'Run of {results.get("started", "?")} on {env.get("device_kind", "?")} '
           f'({env.get("backend", "?")}, {env.get("num_devices", "?")} device(s)), '
           f'jax {env.get("versions", {}).get("jax", "?")}, '
           f'{results.get("seconds", "?")} s of a {results.get("budget_s", "?")} s budget'
           + (' (smoke sizes)' if results.get('smoke') else '') + '.', '']
  failed = {k: v['error'] for k, v in parts.items() if 'error' in v}
  skipped = {k: v['skipped'] for k, v in parts.items() if 'skipped' in v}
  for k, v in failed.items():
    lines.append(f'- part `{k}` failed: {v}')
  for k, v in skipped.items():
    lines.append(f'- part `{k}` skipped: {v}')
  if failed or skipped:
    lines.append('')
  tp = parts.get('throughput', {})
  if tp.get('rows'):
    lines += [(f'`adapt_many`, config `{tp["config"]}`, {tp["frames"]} frames of '
               f'{tp["size"][1]}x{tp["size"][0]}, {tp["steps"]} steps of `full`, '
               f'{tp["devices"]} device(s):'), '',
              ('| K | videos | s (compiled) | videos/hour | of K x one video | compiled MiB '
               '/ video | peak MiB |'), '|---|---|---|---|---|---|---|']
    for r in tp['rows']:
      lines.append(f'| {r["K"]} | {r["videos"]} | {r["seconds"]} | {r["videos_per_hour"]} | '
                   f'{r["ratio_to_K_x_single"]} | {_mib(r.get("compiled_bytes_per_video"))} | '
                   f'{_mib(r.get("memory", {}).get("peak_bytes_in_use"))} |')
    lines.append('')
  sc = parts.get('scan', {})
  if 'scan' in sc:
    lines += [(f'Adaptation path ({sc["steps"]} steps, frames {sc["frames"]}): per-step '
               f'dispatch {sc["dispatch"]["steps_per_s"]} steps/s, `lax.scan` '
               f'{sc["scan"]["steps_per_s"]} steps/s: scan / dispatch = '
               f'{sc["scan_over_dispatch"]}.'), '']
  if flips:
    for path in ('index32', 'index64'):
      f = flips[path]
      lines.append(f'Scale-index flips, {path}: {f["differ"]} of {f["total"]} differ '
                   f'({" vs ".join(flips["machines"])}).')
    lines.append('')
  if adapt:
    c = adapt['cpu_encoder_vs_accelerator']
    lines += [f'Accelerator encode, CPU decode: {adapt["model"]} adapted with `full` for '
              f'{adapt["steps"]} steps on {adapt["frames"][0]} frames of '
              f'{adapt["frames"][2]}x{adapt["frames"][1]} ({adapt["nonzero_update"]} non-zero '
              f'update integers, {adapt["update_bits"]} update bits, '
              f'{adapt["stream_bytes"]} bytes in all), decoded here in a fresh process: '
              + ('**bit-exact** (every latent and update integer as the accelerator chose it)'
                 if adapt['bit_exact'] else '**NOT bit-exact**')
              + f'; against the accelerator\'s own float synthesis '
              f'{adapt["values_differ_from_accelerator_synthesis"]} pixel values differ, by at '
              f'most {adapt["max_difference_from_accelerator_synthesis"]}. This machine as '
              f'encoder would have chosen {c["z_int_differ"]} z and {c["y_int_differ"]} y '
              'integers differently.',
              '']
  tests = parts.get('tests', {})
  if 'summary' in tests:
    lines.append(f'Tests without the range coder ({len(tests["files"])} files): '
                 f'`{tests["summary"]}`' + (f'; failing: {", ".join(tests["failed"][:8])}'
                                            if tests.get('failed') else '') + '.')
    lines.append('')
  train = parts.get('train', {})
  for name, meta in train.get('models', {}).items():
    lines.append(f'- trained `{name}`: {meta.get("history", ["?"])[-1]}')
  return '\n'.join(lines).rstrip() + '\n'


def write_section(readme: str, text: str):
  """Replaces the marked section of `readme` (appends one if there is none)."""
  with open(readme) as f:
    content = f.read()
  block = f'{BEGIN}\n{text}{END}'
  if BEGIN in content and END in content:
    head, rest = content.split(BEGIN, 1)
    content = head + block + rest.split(END, 1)[1]
  else:
    content = (content.rstrip() + '\n\n## `accelerator_run.py`: the latest accelerator run\n\n'
               + block + '\n')
  atomic_io.write_bytes(readme, content.encode())


def install_weights(results_dir: str, results: dict, weights_dir: str,
                    campaign_workdir: str) -> list[str]:
  """Writes the returned models as shipped models; retires the older local branch.

  Refuses (IngestError, nothing written) when the local campaign branch has more
  cumulative steps than a returned model: the GPU then started from older weights
  than the branch (a run without `make accelerator-pack`'s start weights), and
  installing its models would throw away the branch's newer training.
  """
  train = results['parts'].get('train', {})
  local = campaign.branch_cumulative_steps(campaign_workdir)
  ahead = [f'{name} {local[name]} > {meta.get("cumulative_steps")}'
           for name, meta in train['models'].items()
           if name in local and local[name] > int(meta.get('cumulative_steps') or 0)]
  if ahead:
    raise IngestError(f'the local campaign branch in {campaign_workdir} is ahead of the '
                      f'returned weights (cumulative steps: {"; ".join(ahead)}); not '
                      'installed. Move the branch aside first to install them anyway.')
  with open(os.path.join(results_dir, 'weights.msgpack'), 'rb') as f:
    state = weight_grid.decode_tree(serialization.msgpack_restore(f.read()))
  written = []
  for name, meta in train['models'].items():
    config = get_config(meta['config'])
    template = models.init_model(config.name).params
    try:
      params = serialization.from_state_dict(template, state[name])
    except (KeyError, ValueError) as e:
      raise IngestError(f'{name}: the returned weights do not fit {config.name}: {e}') from None
    params = jax.tree.map(lambda a: np.asarray(a, np.float32), params)
    if jax.tree.leaves(jax.tree.map(lambda a, t: np.shape(a) != np.shape(t), params, template)
                       ).count(True):
      raise IngestError(f'{name}: returned weights of the wrong shape')
    model = models.Model(name, config, params, meta)
    if model.fingerprint.hex() != train['fingerprints'][name]:
      raise IngestError(f'{name}: the returned weights do not match their fingerprint')
    models.save_model(model, os.path.join(weights_dir, name + '.msgpack'))
    written.append(name)
  branch = os.path.join(campaign_workdir, 'constant')
  if os.path.isdir(branch):
    aside = f'{campaign_workdir}-before-accelerator-{time.strftime("%Y%m%d-%H%M%S")}'
    os.rename(campaign_workdir, aside)
    print(f'moved the older local campaign branch to {aside}')
  return written


_RESULTS = flags.DEFINE_string('results', None, 'Folder the accelerator run returned.')
_README = flags.DEFINE_string('readme', '', 'Write the tables into this file\'s marked '
                              'section (benchmarks/README.md after a real run).')
_INSTALL = flags.DEFINE_bool('install_weights', False, 'Write the trained models into '
                             '--weights_dir, for the campaign to continue from.')
_WEIGHTS = flags.DEFINE_string('weights_dir', models.WEIGHTS_DIR, 'Shipped weights.')
_CAMPAIGN = flags.DEFINE_string('campaign_workdir', 'runs/campaign', 'The local campaign\'s '
                                'work directory (moved aside by --install_weights).')


def main(argv):
  del argv
  if not _RESULTS.value:
    raise app.UsageError('give --results=DIR')
  path = os.path.join(_RESULTS.value, 'results.json')
  try:
    with open(path) as f:
      results = json.load(f)
  except (OSError, ValueError) as e:
    sys.exit(f'accelerator ingest: cannot read {path}: {e}')
  adapt = flips = None
  try:
    with tempfile.TemporaryDirectory() as work:
      if os.path.exists(os.path.join(_RESULTS.value, 'adapt.npz')):
        adapt = check_adapt(os.path.join(_RESULTS.value, 'adapt.npz'), work)
      if os.path.exists(os.path.join(_RESULTS.value, 'flips.npz')):
        flips = check_flips(os.path.join(_RESULTS.value, 'flips.npz'),
                            results['parts']['flips']['model'], work)
    text = report(results, adapt, flips)
    print(text)
    if _README.value:
      write_section(_README.value, text)
      print(f'wrote the tables into {_README.value}')
    if _INSTALL.value:
      if 'models' not in results['parts'].get('train', {}):
        raise IngestError('the run returned no trained weights')
      names = install_weights(_RESULTS.value, results, _WEIGHTS.value, _CAMPAIGN.value)
      print(f'installed {", ".join(names)} in {_WEIGHTS.value}')
  except (IngestError, KeyError, OSError) as e:
    sys.exit(f'accelerator ingest: {e}')
  if adapt is None:
    sys.exit('accelerator ingest: the run returned no adapt.npz to check')
  if not adapt['bit_exact']:
    sys.exit('accelerator ingest: the decoded frames are not what the accelerator\'s '
             'integers reconstruct to')
  if adapt['max_difference_from_accelerator_synthesis'] > 1:
    sys.exit('accelerator ingest: decoded frames differ from the accelerator\'s '
             f'reconstruction by up to {adapt["max_difference_from_accelerator_synthesis"]}')
  print(f'accelerator ingest: bit-exact (every integer decoded as the accelerator chose it; '
        f'{adapt["values_differ_from_accelerator_synthesis"]} pixel values differ by at most 1 '
        'from its float synthesis)')


if __name__ == '__main__':
  app.run(main)
