using Microsoft.EntityFrameworkCore;
using TrainingService.Server.Data.Entities;

namespace TrainingService.Server.Data;

public sealed class TrainingDbContext(DbContextOptions<TrainingDbContext> options) : DbContext(options)
{
    public DbSet<Dataset> Datasets => Set<Dataset>();
    public DbSet<DatasetChunk> DatasetChunks => Set<DatasetChunk>();
    public DbSet<Job> Jobs => Set<Job>();
    public DbSet<JobEpoch> JobEpochs => Set<JobEpoch>();
    public DbSet<JobCheckpoint> JobCheckpoints => Set<JobCheckpoint>();
    public DbSet<JobModel> JobModels => Set<JobModel>();
    public DbSet<IdempotencyRecord> IdempotencyRecords => Set<IdempotencyRecord>();
    public DbSet<Tenant> Tenants => Set<Tenant>();
    public DbSet<ApiKey> ApiKeys => Set<ApiKey>();
    public DbSet<Sweep> Sweeps => Set<Sweep>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) =>
        modelBuilder.ApplyConfigurationsFromAssembly(typeof(TrainingDbContext).Assembly);
}
