"""Signal math shared by the blocks and training: the channel of Eq. (2)
(numpy and torch), closed-form BER, constellations and audio features."""
