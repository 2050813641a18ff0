# hard_base.py plus 24 pasted sequences (reusegate.data.copies.PastedSequence): the object of each training
# sequence cut out and pasted on another training sequence's frames (drawn with seed 0), drifting 20 % of the
# frame over the clip. The 48 sequences get 4 clips per object and epoch, as many iterations as hard_base's.
_base_ = ['hard_base.py']
train_dataloader = dict(dataset=dict(samples_per_object=4, pasted=dict(count=24, drift=0.2, seed=0)))
