"""nanoseg training (desktop): dataset readers, tf.data pipeline, Unet training, evaluation."""
