# hard_base.py plus three fixed augmented copies of every training sequence (reusegate.data.copies): mirrored;
# zoomed 1.3x on a crop that pans 20 % of the frame width across the video; mirrored, zoomed 1.5x, panning 30 %,
# colour factors within +-20 %. Each copy is cached like a sequence (a 5-minute cache pass each on 2 cores). The
# originals and the copies get 2 clips per object and epoch, so an epoch has as many iterations as hard_base's.
_base_ = ['hard_base.py']
train_dataloader = dict(dataset=dict(
    samples_per_object=2,
    copies=[dict(flip=True), dict(zoom=1.3, pan=0.2, seed=1), dict(flip=True, zoom=1.5, pan=0.3, color=0.2, seed=2)]))
