from iac_jax.evaluation import image_rates


def test_rates_three_ways(shipped_model, sample_image):
  row = image_rates.evaluate_image(shipped_model, sample_image)
  assert row['bpp_train_estimate'] >= row['bpp_eval_estimate'] > 0
  # Real bytes: the estimate plus ~100 bytes of headers and coder flushes.
  pixels = row['width'] * row['height']
  assert abs(row['bpp_real'] - row['bpp_eval_estimate']) <= (
      0.02 * row['bpp_eval_estimate'] + 8 * 100 / pixels)
  assert 15 < row['psnr_db'] < 60
