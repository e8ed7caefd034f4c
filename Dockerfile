# One image for every role: `--role api`, `--role worker`, or both (default).
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY Directory.Build.props Directory.Packages.props TrainingService.sln ./
COPY src/TrainingService.Compute/TrainingService.Compute.csproj src/TrainingService.Compute/
COPY src/TrainingService.Server/TrainingService.Server.csproj src/TrainingService.Server/
RUN dotnet restore src/TrainingService.Server/TrainingService.Server.csproj
COPY src/ src/
RUN dotnet publish src/TrainingService.Server -c Release --no-restore -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
# CUDA needs only the NVIDIA driver (libcuda), which the NVIDIA container toolkit mounts; see deploy/docker-compose.gpu.yml.
# Logs: one JSON object a line in containers (collectors parse it); a terminal gets the human-readable default.
ENV Urls=http://0.0.0.0:8080 \
    DOTNET_gcServer=0 \
    Logging__Console__FormatterName=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s CMD ["dotnet", "TrainingService.Server.dll", "--healthcheck"]
ENTRYPOINT ["dotnet", "TrainingService.Server.dll"]
