"""mmengine integration: registered model, datasets, metric and hooks (scope ``reusegate``)."""
