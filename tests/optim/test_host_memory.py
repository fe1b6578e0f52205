"""The huge-page hint: shown exactly when setting the tunable would change something."""

from iac_jax.optim import host_memory

_NEW_GLIBC = (2, 36)


def test_tunable_is_read_among_other_tunables():
  assert host_memory.tunable_set({'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1'})
  assert host_memory.tunable_set(
      {'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2'})
  assert not host_memory.tunable_set({'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=0'})
  assert not host_memory.tunable_set({'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2'})
  assert not host_memory.tunable_set({})


def test_hint_only_where_the_tunable_would_help():
  hint = host_memory.hint({}, 'madvise', _NEW_GLIBC)
  assert hint is not None and host_memory.SETTING in hint
  # Already set; the kernel gives huge pages to every mapping, or to none; old glibc.
  assert host_memory.hint({'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1'}, 'madvise',
                          _NEW_GLIBC) is None
  assert host_memory.hint({}, 'always', _NEW_GLIBC) is None
  assert host_memory.hint({}, 'never', _NEW_GLIBC) is None
  assert host_memory.hint({}, 'madvise', (2, 31)) is None


def test_kernel_mode_is_the_bracketed_word(tmp_path):
  path = tmp_path / 'enabled'
  path.write_text('always [madvise] never\n')
  assert host_memory._thp_mode(str(path)) == 'madvise'
  path.write_text('garbage\n')
  assert host_memory._thp_mode(str(path)) is None
  assert host_memory._thp_mode(str(tmp_path / 'missing')) is None
