"""Tokenizers F_α and de-tokenizers F_β (Sec. III) with the σ-GenIB and VAE objectives."""
