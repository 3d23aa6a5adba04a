# Runtime: the same rules as container-hardening's runtime.yml, in InSpec syntax.

control 'ch-rt-01' do
  impact 0.7
  title 'The main process does not run as root'
  desc 'Run as a non-root user so a compromise does not start with root (CIS 4.1, SP 800-190 4.4.3).'
  tag nist: %w[AC-6 CM-6], cis: '4.1', severity: 'high'
  only_if('no processes are visible on this target (/proc is not mounted in the scanned root)') { processes.entries.any? }
  main = processes.where { pid == 1 }
  main = processes if main.entries.empty?
  describe 'The main process user' do
    subject { main.entries.first.user }
    it { should_not eq 'root' }
  end
end

control 'ch-rt-02' do
  impact 0.7
  title 'The main process environment holds no secrets'
  desc 'Environment variables leak through /proc, crash dumps and orchestration APIs; mount secrets as files (CIS 4.10, SP 800-190 4.1.5).'
  tag nist: %w[IA-5 SC-28], cis: '4.10', severity: 'high'
  environ = file('/proc/1/environ')
  only_if('the main process environment is not visible on this target (/proc is not mounted in the scanned root)') { environ.exist? }
  names = environ.content.to_s.split("\0").filter_map do |kv|
    name, value = kv.split('=', 2)
    name if value && !value.empty? && name =~ ContainerChecks::SECRET_NAMES
  end
  describe 'Variables that look like secrets' do
    subject { names.sort }
    it { should be_empty }
  end
end

control 'ch-rt-03' do
  impact 0.5
  title 'No SSH daemon is running'
  desc 'Containers are entered through the runtime, not SSH (CIS 5.6 intent).'
  tag nist: %w[CM-7 AC-17], severity: 'medium'
  only_if('no processes are visible on this target (/proc is not mounted in the scanned root)') { processes.entries.any? }
  describe processes(/(^|\/)(sshd|dropbear)( |$)/) do
    it { should_not exist }
  end
end

control 'ch-rt-04' do
  impact 0.7
  title 'No legacy network daemons are running'
  desc 'telnetd, ftpd and inetd expose clear-text services.'
  tag nist: %w[CM-7 SC-8], severity: 'high'
  only_if('no processes are visible on this target (/proc is not mounted in the scanned root)') { processes.entries.any? }
  describe processes(/(^|\/)(in\.)?(telnetd|ftpd|vsftpd|inetd|xinetd|tftpd)( |$)/) do
    it { should_not exist }
  end
end

control 'ch-rt-05' do
  impact 0.3
  title 'No cron daemon is running'
  desc 'Scheduled jobs belong to the orchestrator; an in-container cron hides persistence.'
  tag nist: %w[CM-7], severity: 'low'
  only_if('no processes are visible on this target (/proc is not mounted in the scanned root)') { processes.entries.any? }
  describe processes(/(^|\/)(cron|crond|anacron|atd)( |$)/) do
    it { should_not exist }
  end
end

control 'ch-rt-06' do
  impact 0.3
  title 'No package manager is running'
  desc 'Installing software in a running container drifts it from the scanned image (SP 800-190 4.4.4).'
  tag nist: %w[CM-3 CM-7], severity: 'low'
  only_if('no processes are visible on this target (/proc is not mounted in the scanned root)') { processes.entries.any? }
  describe processes(/(^|\/)(apt|apt-get|dpkg|apk|yum|dnf|rpm|pip3?|npm)( |$)/) do
    it { should_not exist }
  end
end

control 'ch-rt-07' do
  impact 0.5
  title 'No debugger or tracer is attached'
  desc 'A tracer in a production container reads secrets from memory.'
  tag nist: %w[CM-7 SI-4], severity: 'medium'
  only_if('no processes are visible on this target (/proc is not mounted in the scanned root)') { processes.entries.any? }
  describe processes(/(^|\/)(gdb|strace|ltrace|perf)( |$)/) do
    it { should_not exist }
  end
end

control 'ch-rt-08' do
  impact 0.7
  title 'No netcat or socat listener is running'
  desc 'A netcat process is a typical bind or reverse shell.'
  tag nist: %w[SI-4 SC-7], severity: 'high'
  only_if('no processes are visible on this target (/proc is not mounted in the scanned root)') { processes.entries.any? }
  describe processes(/(^|\/)(nc|ncat|netcat|socat)( |$)/) do
    it { should_not exist }
  end
end

control 'ch-rt-09' do
  impact 0.9
  title 'No container runtime daemon runs inside the container'
  desc 'Docker-in-Docker needs privileged mode, which is root on the host (SP 800-190 4.4.3).'
  tag nist: %w[AC-6 SC-39], severity: 'critical'
  only_if('no processes are visible on this target (/proc is not mounted in the scanned root)') { processes.entries.any? }
  describe processes(/(^|\/)(dockerd|containerd|podman)( |$)/) do
    it { should_not exist }
  end
end
