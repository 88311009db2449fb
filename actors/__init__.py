"""The actor system an application embeds: plugins, supervisor, error handler, metrics."""
